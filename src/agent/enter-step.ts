import { randomBytes } from 'node:crypto';
import type { AgentStep, JournalStep } from '../schema/parse-journal.js';
import type { AgentContext } from './agent-ports.js';

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
