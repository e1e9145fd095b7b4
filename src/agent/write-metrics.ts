import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PassResult } from '../reconciler/build-device-status.js';
import { writeFileAtomic } from './write-file-atomic.js';

export interface PassMetrics {
  result: PassResult;
  packets: number;
  /** Whether this pass synced and verified the source. */
  synced: boolean;
  now: Date;
}

const results: readonly PassResult[] = ['converged', 'progressing', 'stalled'];

/**
 * Writes `<state>/metrics/gitfleet.prom` for node_exporter's textfile collector (point
 * `--collector.textfile.directory` at that folder). The last successful sync's time is kept in
 * `<state>/last-sync` so it survives restarts.
 */
export async function writeMetrics(stateDir: string, metrics: PassMetrics): Promise<void> {
  const lastSyncFile = join(stateDir, 'last-sync');
  const now = metrics.now.getTime() / 1000;
  if (metrics.synced) await writeFileAtomic(lastSyncFile, `${now}\n`);
  const lastSync = Number((await readFile(lastSyncFile, 'utf8').catch(() => '')).trim()) || undefined;
  const lines = [
    '# HELP gitfleet_last_pass_result The last reconcile pass ended with this result (1) or not (0).',
    '# TYPE gitfleet_last_pass_result gauge',
    ...results.map((r) => `gitfleet_last_pass_result{result="${r}"} ${r === metrics.result ? 1 : 0}`),
    '# HELP gitfleet_last_pass_timestamp_seconds When the last pass ended.',
    '# TYPE gitfleet_last_pass_timestamp_seconds gauge',
    `gitfleet_last_pass_timestamp_seconds ${now}`,
    '# HELP gitfleet_packets_installed Packets installed on the device.',
    '# TYPE gitfleet_packets_installed gauge',
    `gitfleet_packets_installed ${metrics.packets}`,
  ];
  if (lastSync !== undefined) {
    lines.push(
      '# HELP gitfleet_last_successful_sync_timestamp_seconds When the source was last synced and verified.',
      '# TYPE gitfleet_last_successful_sync_timestamp_seconds gauge',
      `gitfleet_last_successful_sync_timestamp_seconds ${lastSync}`,
      '# HELP gitfleet_seconds_since_last_successful_sync Seconds from the last successful sync to the last pass; alert on time() - gitfleet_last_successful_sync_timestamp_seconds for a live figure.',
      '# TYPE gitfleet_seconds_since_last_successful_sync gauge',
      `gitfleet_seconds_since_last_successful_sync ${Math.max(0, now - lastSync)}`,
    );
  }
  const dir = join(stateDir, 'metrics');
  await mkdir(dir, { recursive: true });
  await writeFileAtomic(join(dir, 'gitfleet.prom'), `${lines.join('\n')}\n`);
}
