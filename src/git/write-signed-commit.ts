import git from 'isomorphic-git';
import type { GitRepo } from './git-repo.js';
import type { SshPrivateKey } from './ssh-key.js';
import { signSsh } from './ssh-signature.js';

export interface CommitIdentity {
  name: string;
  email: string;
}

export interface SignedCommitRequest {
  tree: string;
  parents: readonly string[];
  message: string;
  author: CommitIdentity;
  /** Seconds since the epoch; the commit is written in UTC. */
  time: number;
  key: SshPrivateKey;
}

/** Characters git would choke on in an identity line. */
function cleanIdentity(text: string): string {
  return text.replace(/[<>\n\r\0]/g, '').trim();
}

/**
 * Writes a commit signed with an SSH key exactly as `git commit -S` with `gpg.format=ssh` does: the
 * signature (namespace `git`) covers the commit object without its `gpgsig` header, so stock
 * `git verify-commit` accepts it. Returns the new commit id; moves no ref.
 */
export async function writeSignedCommit(repo: GitRepo, request: SignedCommitRequest): Promise<string> {
  const who = `${cleanIdentity(request.author.name)} <${cleanIdentity(request.author.email)}> ${request.time} +0000`;
  const headers = [
    `tree ${request.tree}`,
    ...request.parents.map((p) => `parent ${p}`),
    `author ${who}`,
    `committer ${who}`,
  ];
  const message = request.message.endsWith('\n') ? request.message : `${request.message}\n`;
  const payload = Buffer.from(`${headers.join('\n')}\n\n${message}`, 'utf8');
  const signature = signSsh(payload, 'git', request.key).trimEnd().split('\n').join('\n ');
  const object = Buffer.from(`${headers.join('\n')}\ngpgsig ${signature}\n\n${message}`, 'utf8');
  return git.writeObject({ fs: repo.fs, gitdir: repo.gitdir, type: 'commit', object, format: 'content' });
}
