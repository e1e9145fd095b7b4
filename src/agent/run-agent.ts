import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createHttpClient } from '../git/http-client.js';
import { createFleetMemo } from '../git/read-fleet-at.js';
import { nextPollDelay } from '../reconciler/next-poll-delay.js';
import type { AgentConfig } from '../schema/agent-config.js';
import type { CredentialEnv } from '../git/remote.js';
import { acquireLock } from './acquire-lock.js';
import { defaultAgentPorts, type AgentPorts } from './agent-ports.js';
import { runPass, type PassReport } from './run-pass.js';

export interface AgentRunOptions {
  /** One pass, then return its report. */
  once: boolean;
  /** Plan without changing anything: one pass, whatever `once` says. */
  dryRun?: boolean;
  /** SIGTERM: the agent stops between steps and returns. */
  signal: AbortSignal;
  ports?: Partial<AgentPorts>;
  env?: CredentialEnv;
}

/** The lock that keeps a second agent off the device. */
export function lockPath(config: AgentConfig): string {
  return join(config.dirs.state, 'agent.lock');
}

/**
 * Runs the agent under the device's lock: one pass with `once` or `dryRun` (`agent_locked` when another
 * agent holds the lock), else, once the lock is free, passes until the signal aborts, each after the poll
 * interval with jitter, backing off exponentially while passes are `progressing` (every error retryable:
 * a mirror down) or throw; a `stalled` pass resets the backoff, since only a fleet change helps it.
 * Returns the last pass's report (undefined when stopped before one).
 */
export async function runAgent(
  config: AgentConfig,
  options: AgentRunOptions,
): Promise<PassReport | undefined> {
  const ports = defaultAgentPorts(options.ports);
  const once = options.once || options.dryRun === true;
  // A one-off pass refuses to run beside another agent; the service waits for a one-off pass to end.
  const lock = await acquireLock(lockPath(config), {
    wait: !once,
    pollMs: 1000,
    signal: options.signal,
  }).catch((error: unknown) => {
    if (options.signal.aborted) return undefined;
    throw error;
  });
  if (!lock) return undefined;
  const memo = createFleetMemo();
  const http = createHttpClient();
  let last: PassReport | undefined;
  let failures = 0;
  try {
    while (!options.signal.aborted) {
      try {
        last = await runPass(config, { ...options, ports, memo, http });
        // Back off only from what may clear by itself; a stalled device waits for a fleet change at the usual pace.
        failures = last.result === 'progressing' ? failures + 1 : 0;
      } catch (error) {
        if (options.signal.aborted) break;
        if (once) throw error;
        failures += 1;
        ports.log.log('error', `pass failed: ${error instanceof Error ? error.message : String(error)}`);
      }
      if (once) break;
      const seconds = nextPollDelay(config.poll, failures, Math.random());
      ports.log.log('info', `next pass in ${seconds.toFixed(1)} s`);
      await sleep(seconds * 1000, undefined, { signal: options.signal }).catch(() => undefined);
    }
  } finally {
    await lock.release();
  }
  return last;
}
