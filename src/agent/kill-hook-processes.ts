import { readdir, readFile } from 'node:fs/promises';

/**
 * Kills (SIGKILL) every process that carries `GITFLEET_HOOK_ID=<hookId>` in its environment: what a hook
 * left running when the agent was killed under it (a hook leads its own process group, so it outlives the
 * agent). The id is random per step and inherited by all the hook starts, so nothing else matches.
 * Reads `/proc` (Linux); returns how many processes it killed.
 */
export async function killHookProcesses(hookId: string): Promise<number> {
  const marker = `GITFLEET_HOOK_ID=${hookId}`;
  let killed = 0;
  for (const entry of await readdir('/proc').catch(() => [])) {
    if (!/^\d+$/.test(entry)) continue;
    const environ = await readFile(`/proc/${entry}/environ`, 'latin1').catch(() => '');
    if (!environ.split('\0').includes(marker)) continue;
    try {
      process.kill(Number(entry), 'SIGKILL');
      killed += 1;
    } catch {
      // Gone in the meantime.
    }
  }
  return killed;
}
