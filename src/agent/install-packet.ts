import { mkdir, rm } from 'node:fs/promises';
import type { PassError } from '../reconciler/build-device-status.js';
import type { Packet } from '../schema/fleet.js';
import { GitfleetError, type ErrorCode } from '../schema/gitfleet-error.js';
import type { AgentStep, InstalledRecord, JournalStep } from '../schema/parse-journal.js';
import type { AgentContext } from './agent-ports.js';
import { enterStep } from './enter-step.js';
import { actionError, clearedInterruption, markBad, passErrorOf } from './mark-bad.js';
import { currentSlot, packetPaths, slotName, switchCurrent } from './packet-paths.js';
import { packetKey } from './packet-key.js';
import type { HookResult } from './run-hook.js';
import { runPacketHook } from './run-packet-hook.js';

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
    return passErrorOf(error, name);
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
  const installed = await runPacketHook(ctx, record, 'install');
  if (installed && !installed.ok)
    return rollBack(ctx, step('installing'), hookError('hook_failed', installed, name));
  ctx.ports.onStep('installing:done');

  await enterStep(ctx, step('checking'));
  const checked = await runPacketHook(ctx, record, 'check');
  if (checked && !checked.ok)
    return rollBack(ctx, step('checking'), hookError('check_failed', checked, name));
  ctx.ports.onStep('checking:done');

  await enterStep(ctx, step('switching'));
  await switchCurrent(ctx.root, name, record.slot);
  await finishInstall(ctx, step('switching'));
  ctx.ports.log.log('info', `installed ${name}`, { packet: name, labels, sha256: artifact.sha256 });
  return undefined;
}
