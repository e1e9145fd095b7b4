import git from 'isomorphic-git';
import { GitfleetError } from '../schema/gitfleet-error.js';
import { FLEET_FILE, parseFleetFile } from '../schema/parse-fleet.js';
import { findSigner, type AllowedSigner } from './allowed-signers.js';
import type { GitRepo } from './git-repo.js';
import { readSignedCommit, type SignedCommit } from './read-signed-commit.js';
import type { SshPublicKey } from './ssh-key.js';
import { verifySsh } from './ssh-signature.js';
import { isAncestor, TIMESTAMP_REF } from './sync-source.js';
import { parseTimestamp, type Timestamp } from './timestamp.js';

/** What a device trusts (agent.yaml `trust`, plus the operator's override). */
export interface TrustPolicy {
  allowedSigners: readonly AllowedSigner[];
  /** `head`: the tip must be signed; `all`: every commit since the accepted revision must be. */
  policy: 'head' | 'all';
  /** The operator's explicit override of anti-rollback, for one pass. */
  allowRollback: boolean;
  /** Require a fresh timestamp even when fleet.yaml does not ask for one. */
  requireTimestamp: boolean;
  /** When the pass started: a timestamp must be unexpired then. */
  now: Date;
}

export interface Signer {
  principals: string[];
  fingerprint: string;
}

export interface VerifiedRevision {
  commit: string;
  signer: Signer;
  timestamp: (Timestamp & { commit: string; signer: Signer }) | undefined;
}

/** Commits one `all` check may walk; more is an error rather than an endless pass. */
const MAX_COMMITS = 100_000;

function untrusted(commit: string, reason: string): GitfleetError {
  return new GitfleetError('untrusted_revision', `commit ${commit}: ${reason}`, {
    hint: 'sign commits with `git commit -S` (gpg.format=ssh) using a key listed in allowed_signers',
  });
}

/**
 * The key that made a commit's SSH signature (namespace `git`). Throws an Error saying why there is none:
 * unsigned, an OpenPGP signature, or a signature that does not verify.
 */
export function signingKey(commit: SignedCommit): SshPublicKey {
  if (!commit.signature) throw new Error('it is not signed');
  if (!commit.signature.startsWith('-----BEGIN SSH SIGNATURE-----')) {
    throw new Error('it carries an OpenPGP signature; only SSH signatures are trusted');
  }
  return verifySsh(commit.signature, commit.payload, 'git').publicKey;
}

/**
 * Who of the allowed signers signed a commit, at the commit time (as `git verify-commit` checks it).
 * Throws an Error with the reason when nobody trusted did.
 */
export function trustedSigner(commit: SignedCommit, signers: readonly AllowedSigner[]): Signer {
  const publicKey = signingKey(commit);
  const signer = findSigner(signers, publicKey, {
    namespace: 'git',
    at: new Date(commit.committedAt * 1000),
  });
  if (!signer) throw new Error(`signed by ${publicKey.fingerprint}, which allowed_signers does not trust`);
  return { principals: signer.principals, fingerprint: publicKey.fingerprint };
}

/**
 * Checks a commit's SSH signature against the allowed signers (see `trustedSigner`). Throws
 * `untrusted_revision` naming the commit and the reason.
 */
export async function verifyCommitSignature(
  repo: GitRepo,
  oid: string,
  signers: readonly AllowedSigner[],
): Promise<Signer> {
  const commit = await readSignedCommit(repo, oid);
  try {
    return trustedSigner(commit, signers);
  } catch (error) {
    throw untrusted(oid, (error as Error).message);
  }
}

async function parentsOf(repo: GitRepo, oid: string): Promise<string[]> {
  const { commit } = await git.readCommit({ fs: repo.fs, gitdir: repo.gitdir, oid, cache: repo.cache });
  return commit.parent;
}

/** Every commit reachable from `from` (inclusive) and not from any of `stop`, bounded. */
async function commitsBetween(repo: GitRepo, from: string, stop: ReadonlySet<string>): Promise<string[]> {
  const seen = new Set<string>();
  const queue = [from];
  while (queue.length > 0) {
    const oid = queue.pop() as string;
    if (seen.has(oid) || stop.has(oid)) continue;
    if (seen.size >= MAX_COMMITS) throw untrusted(from, `more than ${MAX_COMMITS} commits to check`);
    seen.add(oid);
    queue.push(...(await parentsOf(repo, oid)));
  }
  return [...seen];
}

/** Whether the fleet at `tip` asks for timestamps. Only fleet.yaml is read, after the signature checks. */
async function fleetWantsTimestamp(repo: GitRepo, tip: string): Promise<boolean> {
  const { fs, gitdir, cache } = repo;
  const blob = await git
    .readBlob({ fs, gitdir, oid: tip, filepath: FLEET_FILE, cache })
    .catch(() => undefined);
  if (!blob) return false;
  // A fleet.yaml that does not parse fails the read step that follows; here it asks for nothing.
  return parseFleetFile({ path: FLEET_FILE, data: blob.blob }).settings[0]?.trust.timestamp ?? false;
}

async function verifyTimestamp(repo: GitRepo, tip: string, oid: string | undefined, trust: TrustPolicy) {
  if (!oid) {
    throw new GitfleetError('stale_revision', `commit ${tip}: no signed timestamp on ${TIMESTAMP_REF}`, {
      hint: 'run `gitfleet timestamp sign` where the fleet is published (from cron or CI)',
    });
  }
  const signer = await verifyCommitSignature(repo, oid, trust.allowedSigners).catch((error: unknown) => {
    throw new GitfleetError('stale_revision', `timestamp ${oid}: ${(error as Error).message}`);
  });
  const stamp = parseTimestamp((await readSignedCommit(repo, oid)).message, oid);
  if (stamp.source !== tip) {
    throw new GitfleetError('stale_revision', `commit ${tip}: the timestamp ${oid} names ${stamp.source}`);
  }
  if (stamp.expires.getTime() <= trust.now.getTime()) {
    throw new GitfleetError(
      'stale_revision',
      `commit ${tip}: its timestamp expired at ${stamp.expires.toISOString()} (the mirror may be frozen)`,
    );
  }
  return { ...stamp, commit: oid, signer };
}

export interface RevisionToVerify {
  /** The fetched tip. */
  tip: string;
  /** The last accepted revision, if any. */
  accepted: string | undefined;
  /** The commit the timestamp ref points to, if fetched. */
  timestamp: string | undefined;
}

/**
 * Decides whether a fetched tip may be read, before any file of it is parsed: its signature (and with
 * policy `all` every new commit's), descent from the accepted revision (anti-rollback), and freshness
 * when the agent or the tip's fleet.yaml asks for it. Throws `untrusted_revision`, `rollback_refused` or
 * `stale_revision` with the commit and the reason.
 */
export async function verifyRevision(
  repo: GitRepo,
  { tip, accepted, timestamp }: RevisionToVerify,
  trust: TrustPolicy,
): Promise<VerifiedRevision> {
  const signer = await verifyCommitSignature(repo, tip, trust.allowedSigners);
  const descends = !accepted || accepted === tip || (await isAncestor(repo, accepted, tip));
  if (!descends && !trust.allowRollback) {
    throw new GitfleetError(
      'rollback_refused',
      `commit ${tip} does not descend from the accepted ${accepted}`,
      {
        hint: 'a mirror serves an older or rewritten history; an operator can override once with --allow-rollback',
      },
    );
  }
  if (trust.policy === 'all') {
    // Everything the accepted revision reaches was checked when it was accepted.
    const stop = new Set(accepted && descends ? await commitsBetween(repo, accepted, new Set()) : []);
    for (const oid of await commitsBetween(repo, tip, stop)) {
      if (oid !== tip) await verifyCommitSignature(repo, oid, trust.allowedSigners);
    }
  }
  const wantsTimestamp = trust.requireTimestamp || (await fleetWantsTimestamp(repo, tip));
  return {
    commit: tip,
    signer,
    timestamp: wantsTimestamp ? await verifyTimestamp(repo, tip, timestamp, trust) : undefined,
  };
}
