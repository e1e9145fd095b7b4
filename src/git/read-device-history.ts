import git from 'isomorphic-git';
import { GitfleetError } from '../schema/gitfleet-error.js';
import { summariseStatus, type DeviceState, type SignatureCheck } from '../reconciler/summarise-status.js';
import { loadAllowedSigners, type AllowedSigner } from './allowed-signers.js';
import type { GitRepo } from './git-repo.js';
import {
  checkStateSignature,
  deviceKey,
  isoTime,
  readFleetRecords,
  readStatusFile,
} from './read-device-states.js';
import { readSignedCommit, type SignedCommit } from './read-signed-commit.js';
import { stateRef } from './record-state.js';
import { signingKey, trustedSigner } from './verify-revision.js';

/** Who signed a source commit. */
export type SourceSigner =
  /** The signature verifies and allowed_signers trusts the key (for `git`, at the commit time). */
  | { status: 'trusted'; fingerprint: string; principals: string[] }
  /** The signature verifies; no allowed_signers file was given to say whose key it is. */
  | { status: 'not-checked'; fingerprint: string }
  | { status: 'unsigned' }
  /** The signature does not verify, or allowed_signers does not trust its key. */
  | { status: 'bad'; reason: string };

/** The source commit a state converged to (or tried to). */
export interface SourceCommit {
  commit: string;
  /** The first line of the commit message. */
  subject: string;
  /** `name <email>`. */
  author: string;
  /** Author time, ISO 8601 (UTC). */
  authoredAt: string;
  signer: SourceSigner;
}

/** One state commit of a device, joined with the source commit it observed. */
export interface HistoryEntry {
  stateCommit: string;
  /** The state commit's committer time (ISO 8601), as the device's clock had it. */
  recordedAt: string;
  signature: SignatureCheck;
  observedRevision: string | undefined;
  state: DeviceState;
  summary: string;
  errors: string[];
  /** Undefined when the state names no revision or the repository does not hold it. */
  source: SourceCommit | undefined;
}

export interface DeviceHistory {
  device: string;
  ref: string;
  rev: string;
  /** The source commit `rev` names; the device record (and its key) comes from it. */
  commit: string;
  hasRecord: boolean;
  /** Newest first, along first parents. */
  entries: HistoryEntry[];
  /** Whether older state commits exist beyond `limit` (or are missing from the repository). */
  more: boolean;
}

export interface HistoryOptions {
  /** The fleet revision whose device record holds the device's key; default `main`. */
  rev?: string;
  /** Path of an allowed_signers file to check source commit signers against. */
  allowedSigners?: string;
  /** State commits to read, at least 1; default 50. */
  limit?: number;
}

/** Device ids as device records allow them: also keeps the ref name a single path segment. */
const DEVICE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

function sourceSigner(commit: SignedCommit, signers: readonly AllowedSigner[] | undefined): SourceSigner {
  if (commit.signature === undefined) return { status: 'unsigned' };
  try {
    if (signers) return { status: 'trusted', ...trustedSigner(commit, signers) };
    return { status: 'not-checked', fingerprint: signingKey(commit).fingerprint };
  } catch (error) {
    return { status: 'bad', reason: (error as Error).message };
  }
}

async function readSourceCommit(
  repo: GitRepo,
  oid: string,
  signers: readonly AllowedSigner[] | undefined,
): Promise<SourceCommit | undefined> {
  const commit = await readSignedCommit(repo, oid).catch(() => undefined);
  if (!commit) return undefined;
  const [, author = commit.author, seconds = '0'] = /^(.*) (\d+) [+-]\d{4}$/.exec(commit.author) ?? [];
  return {
    commit: oid,
    subject: commit.message.split('\n', 1)[0] ?? '',
    author,
    authoredAt: isoTime(Number(seconds)),
    signer: sourceSigner(commit, signers),
  };
}

async function stateTip(repo: GitRepo, deviceId: string): Promise<string | undefined> {
  const { fs, gitdir } = repo;
  return git.resolveRef({ fs, gitdir, ref: stateRef(deviceId) }).catch(() => undefined);
}

/**
 * A device's state commits (DESIGN.md §5 `history`), newest first along first parents, at most `limit`:
 * each with its signature checked against the key in the device's record at `rev`, its status summarised,
 * and the source commit it observed joined in with its subject, author and signer. Throws
 * `invalid_manifest` for an id with no state ref, a fleet that does not parse or an unreadable allowed
 * signers file, and `untrusted_revision` for a malformed allowed signers file.
 */
export async function readDeviceHistory(
  dir: string,
  deviceId: string,
  options: HistoryOptions = {},
): Promise<DeviceHistory> {
  const { rev = 'main', limit = 50 } = options;
  if (!Number.isInteger(limit) || limit < 1) {
    throw new GitfleetError('invalid_manifest', `limit must be a whole number of at least 1, not ${limit}`);
  }
  if (!DEVICE_ID.test(deviceId)) {
    throw new GitfleetError('invalid_manifest', `${JSON.stringify(deviceId)} is not a device id`);
  }
  const { repo, commit, records } = await readFleetRecords(dir, rev);
  const signers =
    options.allowedSigners === undefined ? undefined : await loadAllowedSigners(options.allowedSigners);
  const record = records.get(deviceId);
  const ref = stateRef(deviceId);
  const tip = await stateTip(repo, deviceId);
  if (tip === undefined) {
    const known = record ? `device ${deviceId} has a record but` : `no device ${deviceId}:`;
    throw new GitfleetError('invalid_manifest', `${known} no state ref ${ref} in ${dir}`, {
      hint: "fetch the state refs first: git fetch origin '+refs/gitfleet/state/*:refs/gitfleet/state/*'",
    });
  }
  const key = deviceKey(record);
  const sources = new Map<string, Promise<SourceCommit | undefined>>();
  const entries: HistoryEntry[] = [];
  let next: string | undefined = tip;
  while (next !== undefined && entries.length < limit) {
    const oid: string = next;
    const state = await readSignedCommit(repo, oid).catch(() => undefined);
    if (!state) break;
    const parsed = await readStatusFile(repo, state, deviceId);
    const observed = parsed.ok && parsed.value.observedRevision ? parsed.value.observedRevision : undefined;
    if (observed !== undefined && !sources.has(observed)) {
      sources.set(observed, readSourceCommit(repo, observed, signers));
    }
    entries.push({
      stateCommit: oid,
      recordedAt: isoTime(state.committedAt),
      signature: checkStateSignature(state, key),
      observedRevision: observed,
      ...summariseStatus(parsed),
      source: observed === undefined ? undefined : await sources.get(observed),
    });
    next = state.parents[0];
  }
  return {
    device: deviceId,
    ref,
    rev,
    commit,
    hasRecord: record !== undefined,
    entries,
    more: next !== undefined,
  };
}
