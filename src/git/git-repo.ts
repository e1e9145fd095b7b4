import * as fs from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import git from 'isomorphic-git';
import { GitfleetError } from '../schema/gitfleet-error.js';

/**
 * A local git repository as isomorphic-git wants it, with one object cache shared by every call: without
 * it, reading 10k blobs re-opens the packfile index for each one.
 */
export interface GitRepo {
  fs: typeof fs;
  /** The working tree (non-bare) or the git directory itself (bare). */
  dir: string;
  gitdir: string;
  cache: object;
}

async function isDirectory(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isDirectory() ?? false;
}

/** Opens a working tree (`dir/.git`) or a bare repository. Throws `invalid_manifest` when it is neither. */
export async function openRepo(dir: string): Promise<GitRepo> {
  if (await isDirectory(join(dir, '.git'))) return { fs, dir, gitdir: join(dir, '.git'), cache: {} };
  if ((await isDirectory(join(dir, 'objects'))) && (await isDirectory(join(dir, 'refs')))) {
    return { fs, dir, gitdir: dir, cache: {} };
  }
  throw new GitfleetError('invalid_manifest', `${dir} is not a git repository`, {
    hint: 'without --rev, --dir reads the files on disk',
  });
}

async function resolveName(repo: GitRepo, name: string): Promise<string | undefined> {
  const { fs: _fs, gitdir, cache } = repo;
  const oid = await git.resolveRef({ fs: _fs, gitdir, ref: name }).catch(() => undefined);
  if (oid || !/^[0-9a-f]{4,40}$/i.test(name)) return oid;
  return git.expandOid({ fs: _fs, gitdir, oid: name.toLowerCase(), cache }).catch(() => undefined);
}

/**
 * The commit a revision names: a branch, tag or other ref, `HEAD`, or a full or abbreviated commit id,
 * optionally followed by `~N` / `^N` steps as in git. Annotated tags are peeled. Throws `invalid_manifest`
 * when nothing matches.
 */
export async function resolveCommit(repo: GitRepo, rev: string): Promise<string> {
  const [, name = rev, steps = ''] = /^(.*?)((?:[~^]\d*)*)$/.exec(rev) ?? [];
  const named = await resolveName(repo, name);
  if (!named)
    throw new GitfleetError('invalid_manifest', `no revision ${JSON.stringify(rev)} in ${repo.dir}`);
  const read = async (id: string) =>
    git.readCommit({ fs: repo.fs, gitdir: repo.gitdir, oid: id, cache: repo.cache }).catch(() => {
      throw new GitfleetError('invalid_manifest', `${rev} does not name a commit in ${repo.dir}`);
    });
  let oid: string = (await read(named)).oid;
  for (const [, op, digits] of steps.matchAll(/([~^])(\d*)/g)) {
    const n = digits === '' || digits === undefined ? 1 : Number(digits);
    // `~N` follows N first parents; `^N` takes the N-th parent (`^0` is the commit itself).
    for (let i = 0; i < (op === '~' ? n : Math.min(n, 1)); i++) {
      const parents: string[] = (await read(oid)).commit.parent;
      const next: string | undefined = op === '~' ? parents[0] : parents[n - 1];
      if (!next) throw new GitfleetError('invalid_manifest', `${rev}: no such parent in ${repo.dir}`);
      oid = next;
    }
  }
  return oid;
}
