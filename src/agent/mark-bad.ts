import type { PassError } from '../reconciler/build-device-status.js';
import type { GitfleetError } from '../schema/gitfleet-error.js';
import type { Journal } from '../schema/parse-journal.js';
import type { AgentContext } from './agent-ports.js';

/** An error of a pass or of one packet's action (`packet`), as the state record carries it. */
export function actionError(
  code: string,
  message: string,
  packet: string | undefined,
  extra: { output?: string; retryable?: boolean } = {},
): PassError {
  return {
    code,
    message: message.slice(0, 4000),
    ...(packet === undefined ? {} : { packet }),
    ...(extra.output ? { output: extra.output.slice(-8000) } : {}),
    retryable: extra.retryable ?? false,
  };
}

/** A typed error as the state record carries it, retryable as the error says. */
export function passErrorOf(error: GitfleetError, packet?: string): PassError {
  return actionError(error.code, error.message, packet, { retryable: error.retryable });
}

/** The loop breaker's count, reset when the action it counted for has ended (done or marked bad). */
export function clearedInterruption(ctx: AgentContext, key: string): Journal['interrupted'] {
  const { interrupted } = ctx.journal.journal;
  return interrupted?.key === key ? null : interrupted;
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
