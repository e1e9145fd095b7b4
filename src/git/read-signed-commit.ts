import git from 'isomorphic-git';
import { GitfleetError } from '../schema/gitfleet-error.js';
import type { GitRepo } from './git-repo.js';

/** A commit as its signer signed it: the exact signed bytes and the signature cut out of them. */
export interface SignedCommit {
  oid: string;
  /** The commit object without its `gpgsig` header: the bytes the signature covers. */
  payload: Uint8Array;
  /** The armored signature (`-----BEGIN SSH SIGNATURE-----` or PGP), or undefined when unsigned. */
  signature: string | undefined;
  tree: string;
  parents: string[];
  author: string;
  committer: string;
  /** Committer time, seconds since the epoch. */
  committedAt: number;
  message: string;
}

const SIGNATURE_HEADERS = new Set(['gpgsig', 'gpgsig-sha256']);

/**
 * Splits a raw commit object into its signed payload and signature. isomorphic-git's own payload only
 * knows PGP markers and is wrong for SSH signatures, so the `gpgsig` header and its continuation lines
 * (those starting with a space) are cut here, byte for byte as git does.
 */
export function splitSignedCommit(oid: string, raw: Uint8Array): SignedCommit {
  // latin1 maps every byte to one character and back, so the payload is rebuilt byte for byte.
  const text = Buffer.from(raw).toString('latin1');
  const utf8 = (s: string) => Buffer.from(s, 'latin1').toString('utf8');
  const end = text.indexOf('\n\n');
  const head = end < 0 ? text : text.slice(0, end + 1);
  const message = end < 0 ? '' : text.slice(end + 2);
  const kept: string[] = [];
  const headers = new Map<string, string[]>();
  let signature: string | undefined;
  let inSignature = false;
  for (const line of head.split('\n').slice(0, -1)) {
    if (line.startsWith(' ')) {
      if (inSignature) signature += `\n${line.slice(1)}`;
      else kept.push(line);
      continue;
    }
    const space = line.indexOf(' ');
    const key = space < 0 ? line : line.slice(0, space);
    const value = space < 0 ? '' : line.slice(space + 1);
    inSignature = SIGNATURE_HEADERS.has(key);
    if (key === 'gpgsig') signature = value;
    if (inSignature) continue;
    kept.push(line);
    headers.set(key, [...(headers.get(key) ?? []), value]);
  }
  const one = (key: string) => headers.get(key)?.[0] ?? '';
  const committer = one('committer');
  const when = /> (\d+) [+-]\d{4}$/.exec(committer);
  const payload = Buffer.from(`${kept.join('\n')}\n${end < 0 ? '' : `\n${message}`}`, 'latin1');
  return {
    oid,
    payload,
    signature: signature === undefined ? undefined : `${signature}\n`,
    tree: one('tree'),
    parents: headers.get('parent') ?? [],
    author: utf8(one('author')),
    committer: utf8(committer),
    committedAt: when ? Number(when[1]) : 0,
    message: utf8(message),
  };
}

/** Reads a commit's raw object and splits it. Throws `untrusted_revision` when `oid` is not a commit. */
export async function readSignedCommit(repo: GitRepo, oid: string): Promise<SignedCommit> {
  const object = await git
    .readObject({ fs: repo.fs, gitdir: repo.gitdir, oid, format: 'content', cache: repo.cache })
    .catch((cause: unknown) => {
      throw new GitfleetError('untrusted_revision', `commit ${oid} cannot be read`, { cause });
    });
  if (object.type !== 'commit' || !(object.object instanceof Uint8Array)) {
    throw new GitfleetError('untrusted_revision', `${oid} is a ${object.type}, not a commit`);
  }
  return splitSignedCommit(oid, object.object);
}
