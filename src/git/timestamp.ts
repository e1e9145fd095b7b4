import { readFile } from 'node:fs/promises';
import git from 'isomorphic-git';
import { GitfleetError } from '../schema/gitfleet-error.js';
import { openRepo, resolveCommit, type GitRepo } from './git-repo.js';
import { parseSshPrivateKey, type SshPrivateKey } from './ssh-key.js';
import { TIMESTAMP_REF } from './sync-source.js';
import { writeSignedCommit, type CommitIdentity } from './write-signed-commit.js';

/** What a timestamp says: this source commit was current when signed, and may be trusted until `expires`. */
export interface Timestamp {
  source: string;
  expires: Date;
}

const TITLE = 'gitfleet timestamp';

/** The message of a timestamp commit: a title, then `source:` and `expires:` lines. */
export function formatTimestamp(stamp: Timestamp): string {
  return `${TITLE}\n\nsource: ${stamp.source}\nexpires: ${stamp.expires.toISOString()}\n`;
}

/** Reads a timestamp commit's message. Throws `stale_revision` when it is not one. */
export function parseTimestamp(message: string, commit: string): Timestamp {
  const source = /^source: ([0-9a-f]{40})$/m.exec(message)?.[1];
  const expiresText = /^expires: (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z)$/m.exec(message)?.[1];
  const expires = expiresText === undefined ? undefined : new Date(expiresText);
  if (!message.startsWith(`${TITLE}\n`) || !source || !expires || Number.isNaN(expires.getTime())) {
    throw new GitfleetError('stale_revision', `${commit} on ${TIMESTAMP_REF} is not a gitfleet timestamp`);
  }
  return { source, expires };
}

export interface SignTimestampRequest {
  /** The source commit the timestamp vouches for. */
  source: string;
  expires: Date;
  now: Date;
  key: SshPrivateKey;
  signer: CommitIdentity;
}

/**
 * Writes a signed timestamp commit naming `source` and moves `refs/gitfleet/timestamp` to it. Its parent
 * is the previous timestamp, so the ref only ever fast-forwards and its history shows every refresh.
 * Returns the new commit id.
 */
export async function signTimestamp(repo: GitRepo, request: SignTimestampRequest): Promise<string> {
  const { fs, gitdir } = repo;
  // Every timestamp commit has the empty tree: the message carries everything.
  const tree = await git.writeTree({ fs, gitdir, tree: [] });
  const previous = await git.resolveRef({ fs, gitdir, ref: TIMESTAMP_REF }).catch(() => undefined);
  const commit = await writeSignedCommit(repo, {
    tree,
    parents: previous ? [previous] : [],
    message: formatTimestamp({ source: request.source, expires: request.expires }),
    author: request.signer,
    time: Math.floor(request.now.getTime() / 1000),
    key: request.key,
  });
  await git.writeRef({ fs, gitdir, ref: TIMESTAMP_REF, value: commit, force: true });
  return commit;
}

export interface TimestampOptions {
  /** The source branch or revision the timestamp vouches for. */
  rev: string;
  keyPath: string;
  validForHours: number;
  signer: CommitIdentity;
  now: Date;
}

/** `gitfleet timestamp sign`: signs a timestamp for `rev` in the repository at `dir`. */
export async function signTimestampIn(dir: string, options: TimestampOptions) {
  const repo = await openRepo(dir);
  const source = await resolveCommit(repo, options.rev);
  const key = parseSshPrivateKey(await readFile(options.keyPath, 'utf8'));
  const expires = new Date(options.now.getTime() + options.validForHours * 3_600_000);
  const commit = await signTimestamp(repo, {
    source,
    expires,
    now: options.now,
    key,
    signer: options.signer,
  });
  return { commit, source, expires: expires.toISOString(), ref: TIMESTAMP_REF };
}
