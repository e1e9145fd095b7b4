import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import type { PassError } from '../reconciler/build-device-status.js';
import type { Packet } from '../schema/fleet.js';
import { GitfleetError, type ErrorCode } from '../schema/gitfleet-error.js';
import type { AgentStep, InstalledRecord, Journal, JournalStep } from '../schema/parse-journal.js';
import type { HookName } from './add-packet.js';
import type { AgentContext } from './agent-ports.js';
import { currentSlot, packetPaths, slotName, switchCurrent } from './packet-paths.js';
import { packetKey } from './packet-key.js';
import type { HookResult } from './run-hook.js';

export const defaultHookTimeoutSeconds = 300;

const hookSteps: ReadonlySet<AgentStep> = new Set(['installing', 'checking', 'uninstalling']);

/**
 * Writes the step ahead, then tells the crash-test port it started. A step that runs a hook gets a fresh
 * hook id, which the hook and everything it starts inherit as `GITFLEET_HOOK_ID`.
 */
export async function enterStep(ctx: AgentContext, step: JournalStep): Promise<void> {
  ctx.signal?.throwIfAborted();
  const hookId = hookSteps.has(step.step) ? randomBytes(8).toString('hex') : undefined;
  await ctx.journal.write({ step: hookId === undefined ? step : { ...step, hookId } });
  ctx.ports.onStep(`${step.step}:start`);
}

/** Runs one of a packet's hooks, if it has that hook, in `slot` with the GITFLEET_* environment. */
export async function runPacketHook(
  ctx: AgentContext,
  packet: InstalledRecord,
  hook: HookName,
  slot: string,
  previousSlot: string | null,
): Promise<HookResult | undefined> {
  const path = packet.hooks[hook];
  if (path === undefined) return undefined;
  const paths = packetPaths(ctx.root, packet.name);
  const hookId = ctx.journal.journal.step?.hookId;
  const result = await ctx.ports.runHook({
    hook,
    path,
    slot: paths.slot(slot),
    env: {
      GITFLEET_PACKET: packet.name,
      GITFLEET_VERSION: packet.labels.version ?? '',
      GITFLEET_SLOT: paths.slot(slot),
      GITFLEET_DATA: paths.data,
      GITFLEET_PREVIOUS_SLOT: previousSlot === null ? '' : paths.slot(previousSlot),
      // Inherited by everything the hook starts: recovery finds what a killed agent left running by it.
      ...(hookId === undefined ? {} : { GITFLEET_HOOK_ID: hookId }),
    },
    timeoutMs: (packet.hooks.timeoutSeconds ?? defaultHookTimeoutSeconds) * 1000,
  });
  ctx.ports.log.log(result.ok ? 'info' : 'warn', result.message, { packet: packet.name, hook });
  return result;
}

/** A failed action's error, as the state record carries it. */
export function actionError(
  code: string,
  message: string,
  packet: string,
  extra: { output?: string; retryable?: boolean } = {},
): PassError {
  return {
    code,
    message: message.slice(0, 4000),
    packet,
    ...(extra.output ? { output: extra.output.slice(-8000) } : {}),
    retryable: extra.retryable ?? false,
  };
}

/** Removes a slot that never became current; the whole packet folder when nothing of it is installed. */
export async function discardSlot(ctx: AgentContext, step: JournalStep): Promise<void> {
  const { name, slot } = step.packet;
  const paths = packetPaths(ctx.root, name);
  const installed = ctx.journal.journal.installed.some((r) => r.name === name);
  if (!installed) await rm(paths.dir, { recursive: true, force: true });
  else if ((await currentSlot(ctx.root, name)) !== slot) {
    await rm(paths.slot(slot), { recursive: true, force: true });
  }
}

/** The loop breaker's count, reset when the action it counted for has ended (done or marked bad). */
export function clearedInterruption(ctx: AgentContext, key: string): Journal['interrupted'] {
  const { interrupted } = ctx.journal.journal;
  return interrupted?.key === key ? null : interrupted;
}

/** After the switch: the packet is listed as installed, the step is done, the previous slot goes. */
export async function finishInstall(ctx: AgentContext, step: JournalStep): Promise<void> {
  const { journal } = ctx.journal;
  await ctx.journal.write({
    installed: [...journal.installed.filter((r) => r.name !== step.packet.name), step.packet],
    step: null,
    interrupted: clearedInterruption(ctx, step.key),
  });
  ctx.ports.onStep('switching:done');
  // A crash before this removal leaves a stray slot: the sweep on the next start removes it.
  if (step.previousSlot !== null && step.previousSlot !== step.packet.slot) {
    await rm(packetPaths(ctx.root, step.packet.name).slot(step.previousSlot), {
      recursive: true,
      force: true,
    });
  }
}

/**
 * Ends the step in flight and remembers the packet as bad, so it is not retried until the fleet changes
 * it. Returns the error as every later pass reports it, so the state does not change between them.
 */
export async function markBad(ctx: AgentContext, key: string, error: PassError): Promise<PassError> {
  const { journal } = ctx.journal;
  const marked = { ...error, message: `${error.message} (not retried until the fleet changes this packet)` };
  const { code, message, output } = marked;
  await ctx.journal.write({
    step: null,
    bad: [
      ...journal.bad.filter((b) => b.key !== key),
      { key, name: error.packet ?? '', code, message, ...(output ? { output } : {}) },
    ],
    interrupted: clearedInterruption(ctx, key),
  });
  return marked;
}

/** Rolls a failed install or check back: the new slot goes, the previous stays current, the packet is bad. */
async function rollBack(ctx: AgentContext, step: JournalStep, error: PassError): Promise<PassError> {
  await discardSlot(ctx, step);
  ctx.ports.log.log('warn', `rolled back ${step.packet.name}: ${error.message}`, {
    packet: step.packet.name,
  });
  return markBad(ctx, step.key, error);
}

function hookError(code: ErrorCode, result: HookResult, name: string): PassError {
  return actionError(code, result.message, name, { output: result.output });
}

/**
 * Installs `packet` (or upgrades the installed packet of that name to it): fetch into the cache, extract
 * into a new slot, run `install`, run `check`, switch `current`, then drop the previous slot. Every step is
 * journalled before it starts. A failing hook or check rolls back (the previous slot stays current) and
 * marks the packet bad; an artifact the fleet names but that cannot be fetched is retried on a later pass;
 * one whose contents are refused is marked bad. Returns the error, or undefined when installed.
 * Local I/O errors are thrown with the step left in the journal, for recovery to handle.
 */
export async function installPacket(
  ctx: AgentContext,
  packet: Packet,
  requires: readonly string[],
): Promise<PassError | undefined> {
  const { name, labels, artifact } = packet;
  const key = packetKey('install', name, labels, artifact.sha256);
  const previous = ctx.journal.journal.installed.find((r) => r.name === name);
  const record: InstalledRecord = {
    name,
    labels,
    sha256: artifact.sha256,
    slot: slotName(artifact.sha256),
    requires: [...requires],
    hooks: { ...packet.hooks },
    installedAt: ctx.ports.now().toISOString(),
  };
  const previousSlot = previous ? ((await currentSlot(ctx.root, name)) ?? null) : null;
  const step = (s: AgentStep): JournalStep => ({ step: s, key, packet: record, previousSlot });

  if (previousSlot === record.slot) {
    // The same bytes under other labels: nothing to unpack or run, only the record changes.
    await finishInstall(ctx, step('switching'));
    return undefined;
  }

  await enterStep(ctx, step('fetching'));
  let file: string;
  try {
    file = await ctx.ports.fetchArtifact({
      artifact,
      mirrors: ctx.mirrors,
      cacheDir: ctx.cacheDir,
      ...(ctx.signal ? { signal: ctx.signal } : {}),
      onProgress: (p) =>
        ctx.ports.log.progress(
          `${name}: ${Math.floor((100 * p.stored) / Math.max(p.size, 1))}% of ${p.size} bytes`,
        ),
    });
  } catch (error) {
    if (!(error instanceof GitfleetError)) throw error;
    await ctx.journal.write({ step: null });
    return actionError(error.code, error.message, name, { retryable: error.retryable });
  }
  ctx.ports.onStep('fetching:done');

  await enterStep(ctx, step('extracting'));
  const paths = packetPaths(ctx.root, name);
  try {
    await rm(paths.slot(record.slot), { recursive: true, force: true });
    const { extractArtifact } = await import('./extract-artifact.js');
    await extractArtifact(file, paths.slot(record.slot));
    await mkdir(paths.data, { recursive: true });
  } catch (error) {
    if (!(error instanceof GitfleetError)) throw error;
    // The bytes are the ones the manifest names, so they will never unpack: bad until the fleet changes.
    return rollBack(ctx, step('extracting'), actionError(error.code, error.message, name));
  }
  ctx.ports.onStep('extracting:done');

  await enterStep(ctx, step('installing'));
  const installed = await runPacketHook(ctx, record, 'install', record.slot, previousSlot);
  if (installed && !installed.ok)
    return rollBack(ctx, step('installing'), hookError('hook_failed', installed, name));
  ctx.ports.onStep('installing:done');

  await enterStep(ctx, step('checking'));
  const checked = await runPacketHook(ctx, record, 'check', record.slot, previousSlot);
  if (checked && !checked.ok)
    return rollBack(ctx, step('checking'), hookError('check_failed', checked, name));
  ctx.ports.onStep('checking:done');

  await enterStep(ctx, step('switching'));
  await switchCurrent(ctx.root, name, record.slot);
  await finishInstall(ctx, step('switching'));
  ctx.ports.log.log('info', `installed ${name}`, { packet: name, labels, sha256: artifact.sha256 });
  return undefined;
}
