import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadAllowedSigners } from '../git/allowed-signers.js';
import type { GitRepo } from '../git/git-repo.js';
import { createHttpClient, type HttpClient } from '../git/http-client.js';
import { invalidFleet } from '../git/load-fleet.js';
import { pullFleet } from '../git/pull-fleet.js';
import { createFleetMemo, type FleetMemo } from '../git/read-fleet-at.js';
import { recordState, type RecordResult } from '../git/record-state.js';
import { prepareRemote, type CredentialEnv } from '../git/remote.js';
import { parseSshPrivateKey } from '../git/ssh-key.js';
import { acceptedRevision, initSourceRepo, sourceRepo } from '../git/sync-source.js';
import {
  buildDeviceStatus,
  passResult,
  type PassError,
  type PassResult,
} from '../reconciler/build-device-status.js';
import { shortRevision } from '../reconciler/summarise-status.js';
import type { AgentConfig } from '../schema/agent-config.js';
import type { DeviceStatus } from '../schema/device-status.js';
import type { InstalledPacket } from '../schema/fleet.js';
import { GitfleetError } from '../schema/gitfleet-error.js';
import { defaultAgentPorts, type AgentContext, type AgentPorts } from './agent-ports.js';
import type { ActionReport } from './execute-plan.js';
import { JournalFile } from './journal-file.js';
import { recoverJournal } from './recover-journal.js';
import { passErrorOf } from './mark-bad.js';
import { writeMetrics } from './write-metrics.js';

export interface PassOptions {
  /** Sync, verify, read and plan, then stop: nothing installed, nothing recorded. */
  dryRun?: boolean;
  /** Aborting stops the pass between steps; `runPass` then throws the signal's reason. */
  signal?: AbortSignal;
  ports?: Partial<AgentPorts>;
  /** Parsed fleet files kept by a long-running agent between passes. */
  memo?: FleetMemo;
  http?: HttpClient;
  /** Where remotes without credentials of their own take them from (`GITFLEET_GIT_*`). */
  env?: CredentialEnv;
}

export interface PassReport {
  result: PassResult;
  /** The source commit the pass converged to or tried to; '' before the first verified sync. */
  revision: string;
  actions: ActionReport[];
  errors: PassError[];
  status: DeviceStatus;
  /** The state commit; undefined on a dry run or without a device key. */
  recorded: RecordResult | undefined;
}

function installedPackets(journal: JournalFile): InstalledPacket[] {
  return journal.journal.installed.map(({ name, labels, sha256, requires }) => ({
    name,
    labels,
    sha256,
    requires,
  }));
}

/**
 * One reconcile pass (DESIGN.md §3): recover the journal, sync and verify the source, read the fleet at
 * the verified tip, resolve and plan this device, execute the plan under the journal, and record
 * status.yaml on the device's state ref (a commit only when it changed). Level-triggered and idempotent: a
 * second pass with nothing changed plans nothing, runs no hook and makes no commit.
 *
 * Errors of the pass (unreachable source, untrusted tip, unresolvable device, failed packets) are reported
 * in the result and the state record, never thrown; thrown are local I/O errors, a damaged journal
 * (`invalid_manifest`), and the signal's reason when aborted.
 */
export async function runPass(config: AgentConfig, options: PassOptions = {}): Promise<PassReport> {
  const ports = defaultAgentPorts(options.ports);
  const { dryRun = false, signal } = options;
  const stateDir = config.dirs.state;
  const journal = await JournalFile.open(stateDir);
  const repo = sourceRepo(stateDir);
  await initSourceRepo(repo);
  const http = options.http ?? createHttpClient();
  const ctx: AgentContext = {
    root: config.dirs.root,
    cacheDir: join(stateDir, 'artifacts'),
    mirrors: [],
    journal,
    ports,
    ...(signal ? { signal } : {}),
  };
  if (!dryRun) await recoverJournal(ctx);

  const branch = config.source.ref;
  let revision = (await acceptedRevision(repo, branch)) ?? '';
  let labels = config.device.labels;
  let actions: ActionReport[] = [];
  const errors: PassError[] = [];
  let synced = false;
  try {
    const allowedSigners = await loadAllowedSigners(config.trust.allowedSigners);
    const pulled = await pullFleet({
      repo,
      http,
      remotes: config.source.remotes.map((r) => prepareRemote(r, options.env)),
      branch,
      thinPacks: config.source.thinPacks,
      memo: options.memo ?? createFleetMemo(),
      trust: {
        allowedSigners,
        policy: config.trust.policy,
        allowRollback: false,
        requireTimestamp: config.trust.timestamp,
        now: ports.now(),
      },
      onSkip: (remote, reason) => ports.log.log('warn', `skipped mirror ${remote}: ${reason}`),
      onProgress: ({ phase, loaded, total }) =>
        ports.log.progress(`sync: ${phase} ${loaded}/${total || '?'}`),
    });
    synced = true;
    revision = pulled.fleet.commit;
    const parsed = pulled.fleet.result;
    if (!parsed.ok) throw invalidFleet(parsed.errors);
    // Loaded once the source is in: the planner and the installer are not on a device's way to its poll.
    const [{ planDevice }, { executePlan, plannedReport }] = await Promise.all([
      import('../reconciler/plan-device.js'),
      import('./execute-plan.js'),
    ]);
    const plan = planDevice(parsed.value, config.device.id, config.device.labels, installedPackets(journal));
    labels = plan.device.labels;
    if (!plan.ok) {
      errors.push(...plan.errors.map((e) => ({ code: e.code, message: e.message, retryable: false })));
    } else if (dryRun) {
      actions = plan.actions.map(plannedReport);
    } else {
      ctx.mirrors = parsed.value.settings.artifacts.mirrors;
      const executed = await executePlan(ctx, plan.actions, plan.desired);
      actions = executed.reports;
      errors.push(...executed.errors);
    }
  } catch (error) {
    if (!(error instanceof GitfleetError)) throw error;
    errors.push(passErrorOf(error));
  }
  ports.log.log(
    errors.length === 0 ? 'info' : 'warn',
    `pass ${passResult(errors)} at ${shortRevision(revision)}`,
    {
      revision,
      actions: actions.length,
      errors: errors.map((e) => e.code),
    },
  );

  const status = buildDeviceStatus({
    device: config.device.id,
    labels,
    revision,
    packets: journal.journal.installed.map(({ name, labels: l, sha256, installedAt }) => ({
      name,
      labels: l,
      sha256,
      installedAt,
    })),
    errors,
  });
  const report = { result: passResult(errors), revision, actions, errors, status, recorded: undefined };
  if (dryRun) return report;
  const recorded = await record(config, repo, http, status, ports, options.env);
  await writeMetrics(stateDir, {
    result: report.result,
    packets: status.packets.length,
    synced,
    now: ports.now(),
  });
  return { ...report, recorded };
}

async function record(
  config: AgentConfig,
  repo: GitRepo,
  http: HttpClient,
  status: DeviceStatus,
  ports: AgentPorts,
  env: CredentialEnv | undefined,
): Promise<RecordResult | undefined> {
  if (config.state.key === undefined) {
    ports.log.log('warn', 'state not recorded: agent.yaml names no state.key to sign it with');
    return undefined;
  }
  ports.onStep('recording:start');
  const key = parseSshPrivateKey(await readFile(config.state.key, 'utf8'));
  const first = config.source.remotes[0];
  const remoteConfig = config.state.remote === undefined ? first : { url: config.state.remote };
  const recorded = await recordState(
    {
      repo,
      http,
      remote: config.state.push && remoteConfig ? prepareRemote(remoteConfig, env) : undefined,
      deviceId: config.device.id,
      key,
      now: ports.now(),
    },
    status,
  );
  if (recorded.pushError) ports.log.log('warn', `state not pushed yet: ${recorded.pushError}`);
  ports.onStep('recording:done');
  return recorded;
}
