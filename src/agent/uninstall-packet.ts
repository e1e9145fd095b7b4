import { rm } from 'node:fs/promises';
import type { PassError } from '../reconciler/build-device-status.js';
import type { InstalledRecord, JournalStep } from '../schema/parse-journal.js';
import type { AgentContext } from './agent-ports.js';
import { enterStep } from './enter-step.js';
import { actionError, clearedInterruption, markBad } from './mark-bad.js';
import { runPacketHook } from './run-packet-hook.js';
import { packetPaths } from './packet-paths.js';
import { packetKey } from './packet-key.js';

/** The hook succeeded and the packet is no longer listed: delete its folder, data included. */
export async function finishUninstall(ctx: AgentContext, step: JournalStep): Promise<void> {
  await rm(packetPaths(ctx.root, step.packet.name).dir, { recursive: true, force: true });
  await ctx.journal.write({ step: null, interrupted: clearedInterruption(ctx, step.key) });
  ctx.ports.onStep('removing:done');
}

/**
 * Uninstalls `record`: runs its `uninstall` hook in the current slot, then removes `<root>/<name>/` with
 * its data. A failing hook is recorded (the packet is marked bad for this exact uninstall) and the packet
 * stays installed and listed. Returns the error, or undefined when removed.
 */
export async function uninstallPacket(
  ctx: AgentContext,
  record: InstalledRecord,
): Promise<PassError | undefined> {
  const key = packetKey('uninstall', record.name, record.labels, record.sha256);
  const step = (s: JournalStep['step']): JournalStep => ({
    step: s,
    key,
    packet: record,
    previousSlot: null,
  });

  await enterStep(ctx, step('uninstalling'));
  const result = await runPacketHook(ctx, record, 'uninstall');
  if (result && !result.ok) {
    const error = actionError('hook_failed', result.message, record.name, { output: result.output });
    return markBad(ctx, key, error);
  }
  ctx.ports.onStep('uninstalling:done');

  // One write: the packet leaves the list as the removal is journalled, so no crash can lose its files.
  const { journal } = ctx.journal;
  await ctx.journal.write({
    installed: journal.installed.filter((r) => r.name !== record.name),
    step: step('removing'),
  });
  ctx.ports.onStep('removing:start');
  await finishUninstall(ctx, step('removing'));
  ctx.ports.log.log('info', `uninstalled ${record.name}`, { packet: record.name });
  return undefined;
}
