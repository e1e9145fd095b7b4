import { readdir, rm } from 'node:fs/promises';
import type { ErrorCode } from '../schema/gitfleet-error.js';
import type { AgentStep } from '../schema/parse-journal.js';
import type { AgentContext } from './agent-ports.js';
import { maxInterruptions, recoveryTable } from './agent-steps.js';
import { discardSlot, finishInstall } from './install-packet.js';
import { actionError, markBad } from './mark-bad.js';
import { currentSlot, packetPaths, switchCurrent } from './packet-paths.js';
import { killHookProcesses } from './kill-hook-processes.js';
import { finishUninstall } from './uninstall-packet.js';

/** The error a packet gets when the loop breaker stops retrying it, by the step it kept dying in. */
const stalledCode: Record<AgentStep, ErrorCode> = {
  fetching: 'artifact_mismatch',
  extracting: 'artifact_mismatch',
  installing: 'hook_failed',
  checking: 'check_failed',
  switching: 'hook_failed',
  uninstalling: 'hook_failed',
  removing: 'hook_failed',
};

/**
 * Removes what no journal entry accounts for in installed packets' folders: slots other than the current
 * one (an old slot whose removal was cut off, an extraction's hidden staging folder) and temp links.
 */
async function sweepSlots(ctx: AgentContext): Promise<void> {
  for (const record of ctx.journal.journal.installed) {
    const paths = packetPaths(ctx.root, record.name);
    const current = await currentSlot(ctx.root, record.name);
    for (const entry of await readdir(paths.slots).catch(() => [])) {
      if (entry !== current) await rm(paths.slot(entry), { recursive: true, force: true });
    }
    for (const entry of await readdir(paths.dir).catch(() => [])) {
      if (entry.startsWith('current.')) await rm(`${paths.dir}/${entry}`, { force: true });
    }
  }
}

/**
 * Run at the start of every pass but a dry run: finishes or undoes the step the journal says was in flight, following
 * the recovery table, then sweeps stray slots. Counts interruptions of the same action in the same step;
 * at `maxInterruptions` the packet is marked bad (the loop breaker): the pass then reports it stalled.
 */
export async function recoverJournal(ctx: AgentContext): Promise<void> {
  const { journal } = ctx.journal;
  const step = journal.step;
  if (step !== null) {
    const { recovery, why } = recoveryTable[step.step];
    const last = journal.interrupted;
    const count = last?.key === step.key && last.step === step.step ? last.count + 1 : 1;
    await ctx.journal.write({ interrupted: { key: step.key, step: step.step, count } });
    ctx.ports.log.log(
      'warn',
      `recovering ${step.packet.name} interrupted while ${step.step}: ${recovery} (${why})`,
      {
        packet: step.packet.name,
        step: step.step,
        interruptions: count,
      },
    );
    if (step.hookId && (await killHookProcesses(step.hookId)) > 0) {
      ctx.ports.log.log('warn', `stopped the ${step.step} hook of ${step.packet.name} left running`, {
        packet: step.packet.name,
      });
    }
    if (recovery === 'finish' && step.step === 'switching') {
      if ((await currentSlot(ctx.root, step.packet.name)) !== step.packet.slot) {
        await switchCurrent(ctx.root, step.packet.name, step.packet.slot);
      }
      await finishInstall(ctx, step);
    } else if (recovery === 'finish') {
      await finishUninstall(ctx, step);
    } else {
      if (recovery === 'undo') await discardSlot(ctx, step);
      if (count >= maxInterruptions) {
        const error = actionError(
          stalledCode[step.step],
          `the agent was interrupted ${count} times while ${step.step} ${step.packet.name}`,
          step.packet.name,
        );
        await markBad(ctx, step.key, error);
      } else {
        await ctx.journal.write({ step: null });
      }
    }
  }
  await sweepSlots(ctx);
}
