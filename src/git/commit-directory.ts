import * as fs from 'node:fs';
import { lstat, readFile, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import git from 'isomorphic-git';
import { GitfleetError } from '../schema/gitfleet-error.js';
import { openRepo, type GitRepo } from './git-repo.js';
import type { SshPrivateKey } from './ssh-key.js';
import { writeSignedCommit, type CommitIdentity } from './write-signed-commit.js';

/** Creates a bare repository at `path` (kept as it is when one exists) whose HEAD names `main`. */
export async function createBareRepo(path: string): Promise<GitRepo> {
  await git.init({ fs, gitdir: path, bare: true, defaultBranch: 'main' });
  return openRepo(path);
}

interface TreeEntry {
  mode: string;
  path: string;
  oid: string;
  type: 'blob' | 'tree';
}

/**
 * Writes the tree of `dir` as git would store it after `git add -A`: regular files as blobs (mode 100755
 * when the owner may execute them, else 100644), symlinks as links (their target, not followed), folders
 * as trees. Empty folders and anything else (sockets, fifos) are left out. Returns the tree id, or
 * undefined when nothing in `dir` was kept.
 */
async function writeDirectoryTree(repo: GitRepo, dir: string): Promise<string | undefined> {
  const { gitdir } = repo;
  const entries: TreeEntry[] = [];
  for (const name of (await readdir(dir)).sort()) {
    const path = join(dir, name);
    const info = await lstat(path);
    if (info.isDirectory()) {
      const oid = await writeDirectoryTree(repo, path);
      if (oid !== undefined) entries.push({ mode: '040000', path: name, oid, type: 'tree' });
    } else if (info.isFile()) {
      const oid = await git.writeBlob({ fs: repo.fs, gitdir, blob: await readFile(path) });
      entries.push({ mode: info.mode & 0o100 ? '100755' : '100644', path: name, oid, type: 'blob' });
    } else if (info.isSymbolicLink()) {
      const blob = Buffer.from(await readlink(path), 'utf8');
      const oid = await git.writeBlob({ fs: repo.fs, gitdir, blob });
      entries.push({ mode: '120000', path: name, oid, type: 'blob' });
    }
  }
  return entries.length === 0 ? undefined : git.writeTree({ fs: repo.fs, gitdir, tree: entries });
}

export interface CommitDirectoryRequest {
  /** The commit the new one follows; none for the first commit. */
  parent?: string;
  message: string;
  author: CommitIdentity;
  /** Seconds since the epoch. */
  time: number;
  /** Signs the commit as `git commit -S` with `gpg.format=ssh` does. */
  key: SshPrivateKey;
  /** The branch (`main`) to move to the new commit. */
  branch: string;
}

/**
 * Commits the files of the folder `dir` (not a working tree: every file is taken, nothing is staged) as a
 * signed commit into `repo`, and moves `branch` to it. Returns the commit id.
 *
 * Throws `rollback_refused` when `branch` exists and does not point at `parent` (someone else moved it):
 * the branch only ever moves forward.
 */
export async function commitDirectory(
  repo: GitRepo,
  dir: string,
  request: CommitDirectoryRequest,
): Promise<string> {
  const tree =
    (await writeDirectoryTree(repo, dir)) ??
    (await git.writeTree({ fs: repo.fs, gitdir: repo.gitdir, tree: [] }));
  const ref = `refs/heads/${request.branch}`;
  const current = await git.resolveRef({ fs: repo.fs, gitdir: repo.gitdir, ref }).catch(() => undefined);
  if (current !== undefined && current !== request.parent) {
    throw new GitfleetError(
      'rollback_refused',
      `${ref} is at ${current}, not at the parent ${request.parent ?? '(none)'} of the new commit`,
    );
  }
  const commit = await writeSignedCommit(repo, {
    tree,
    parents: request.parent === undefined ? [] : [request.parent],
    message: request.message,
    author: request.author,
    time: request.time,
    key: request.key,
  });
  await git.writeRef({ fs: repo.fs, gitdir: repo.gitdir, ref, value: commit, force: true });
  return commit;
}
