import { compareStrings } from '../schema/compare-strings.js';
import type { Condition, DeviceStatus } from '../schema/device-status.js';
import type { ParseResult } from '../schema/parse-fleet.js';
import { locatedMessage } from '../schema/problem.js';

/** A device's state in kstatus words, from the conditions of its latest status.yaml. */
export type DeviceState = 'Ready' | 'Stalled' | 'Progressing' | 'Unknown';

export interface StatusSummary {
  state: DeviceState;
  /** One line: the state and the deciding condition's reason, or why there is no usable status. */
  summary: string;
  /** The status's error codes, sorted and without repeats; `invalid_manifest` for a status that does not parse. */
  errors: string[];
}

/**
 * The outcome of checking a state commit's signature against the key in the device's record. The
 * fingerprint is the key that really signed, when the signature itself is valid.
 */
export type SignatureCheck =
  | { verified: true; fingerprint: string }
  | { verified: false; reason: string; fingerprint: string | undefined };

/** Ready True → Ready; else Stalled True → Stalled; else Ready False → Progressing; else Unknown. */
export function deviceState(conditions: readonly Condition[]): DeviceState {
  const status = (type: string) => conditions.find((c) => c.type === type)?.status;
  if (status('Ready') === 'True') return 'Ready';
  if (status('Stalled') === 'True') return 'Stalled';
  if (status('Ready') === 'False') return 'Progressing';
  return 'Unknown';
}

/** Summarises a parsed status.yaml, or the reason it could not be parsed. */
export function summariseStatus(parsed: ParseResult<DeviceStatus>): StatusSummary {
  if (!parsed.ok) {
    const why = parsed.errors[0] ? locatedMessage(parsed.errors[0]) : 'unreadable';
    return { state: 'Unknown', summary: `status.yaml rejected: ${why}`, errors: ['invalid_manifest'] };
  }
  const { conditions, errors } = parsed.value;
  const state = deviceState(conditions);
  const deciding = conditions.find((c) => c.type === (state === 'Stalled' ? 'Stalled' : 'Ready'));
  const reason = state !== 'Unknown' && deciding?.reason ? `: ${deciding.reason}` : '';
  return {
    state,
    summary: `${state}${reason}`,
    errors: [...new Set(errors.map((e) => e.code))].sort(compareStrings),
  };
}

/** A commit id as the tables show it. */
export function shortRevision(oid: string): string {
  return oid.slice(0, 12);
}

/** `verified` or `UNVERIFIED: reason`, loud on purpose: an unverified state may be forged. */
export function describeSignatureCheck(check: SignatureCheck): string {
  return check.verified ? 'verified' : `UNVERIFIED: ${check.reason}`;
}
