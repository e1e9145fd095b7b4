import { setTimeout as sleep } from 'node:timers/promises';

/** Polls `check` every `pollMs` until it holds; throws naming `what` after `timeoutMs`. */
export async function waitUntil(
  check: () => boolean,
  what: string,
  { timeoutMs = 30_000, pollMs = 20 }: { timeoutMs?: number; pollMs?: number } = {},
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(pollMs);
  }
}
