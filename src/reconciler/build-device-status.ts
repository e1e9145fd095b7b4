import type { Condition, DeviceStatus, StatusError, StatusPacket } from '../schema/device-status.js';
import type { Labels } from '../schema/fleet.js';

/** How a pass ended, in kstatus words: the loop requeues `progressing` sooner than `converged`. */
export type PassResult = 'converged' | 'progressing' | 'stalled';

/** An error of a pass, with whether a later pass may clear it without anyone changing the fleet. */
export interface PassError extends StatusError {
  retryable: boolean;
}

export interface PassOutcome {
  device: string;
  labels: Labels;
  /** The source commit the pass converged to or tried to; '' before the first verified sync. */
  revision: string;
  /** What is installed after the pass. */
  packets: readonly StatusPacket[];
  errors: readonly PassError[];
}

/** `hook_failed` → `HookFailed`: a condition reason from an error code. */
function reasonOf(code: string): string {
  return code.replace(/(^|_)([a-z])/g, (_, __: string, letter: string) => letter.toUpperCase());
}

/**
 * The pass's result: converged without errors; progressing when every error may clear by itself (a mirror
 * that is down); stalled when one needs a change of the fleet or the device.
 */
export function passResult(errors: readonly PassError[]): PassResult {
  if (errors.length === 0) return 'converged';
  return errors.every((e) => e.retryable) ? 'progressing' : 'stalled';
}

/**
 * status.yaml for a pass (DESIGN.md §3): `Ready` True when converged; otherwise `Ready` False with the
 * first error's reason, plus `Stalled` True when the pass is stalled. Deterministic: no clock, so a pass
 * that changed nothing gives the same bytes as the one before it and makes no state commit.
 */
export function buildDeviceStatus(outcome: PassOutcome): DeviceStatus {
  const result = passResult(outcome.errors);
  const first = outcome.errors[0];
  const conditions: Condition[] =
    first === undefined
      ? [{ type: 'Ready', status: 'True', reason: 'Converged', message: '' }]
      : [
          { type: 'Ready', status: 'False', reason: reasonOf(first.code), message: first.message },
          ...(result === 'stalled'
            ? [
                {
                  type: 'Stalled',
                  status: 'True' as const,
                  reason: reasonOf(first.code),
                  message: first.message,
                },
              ]
            : []),
        ];
  return {
    device: outcome.device,
    labels: outcome.labels,
    observedRevision: outcome.revision,
    conditions,
    packets: [...outcome.packets],
    errors: outcome.errors.map(({ retryable: _, ...error }) => error),
  };
}
