/** The stable error codes of DESIGN.md §2, used in `--json` output and in state files. */
export const errorCodes = [
  'no_matching_packet',
  'ambiguous_match',
  'conflicting_app',
  'dependency_cycle',
  'invalid_manifest',
  'duplicate_packet',
  'untrusted_revision',
  'rollback_refused',
  'stale_revision',
  'artifact_mismatch',
  'hook_failed',
  'check_failed',
  'empty_set_refused',
  // Beyond DESIGN.md §2: no mirror of the source could be reached (retryable).
  'source_unreachable',
  // Beyond DESIGN.md §2: another agent holds the device's lock (retryable).
  'agent_locked',
] as const;

export type ErrorCode = (typeof errorCodes)[number];

export interface GitfleetErrorOptions {
  hint?: string;
  cause?: unknown;
  /** True when the same call may succeed later without anyone changing the fleet (network, locks). */
  retryable?: boolean;
  exitCode?: number;
}

/**
 * The one error class of gitfleet. The loop and the CLI decide on `code` and `retryable`, never on the
 * message; messages must not carry secrets (credentials in remote URLs are redacted before they get here).
 */
export class GitfleetError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly retryable: boolean;
  readonly exitCode: number;

  constructor(code: ErrorCode, message: string, options: GitfleetErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GitfleetError';
    this.code = code;
    this.hint = options.hint;
    this.retryable = options.retryable ?? false;
    this.exitCode = options.exitCode ?? 1;
  }
}
