import git, { type HttpClient, type ProgressCallback } from 'isomorphic-git';
import type { GitRepo } from './git-repo.js';
import type { Remote } from './remote.js';
import { completeThinPacks, listPacks, requestThinPacks } from './thin-pack.js';

/** Whether the commit object is in the local repository. */
export async function hasCommit(repo: GitRepo, oid: string): Promise<boolean> {
  return git
    .readCommit({ fs: repo.fs, gitdir: repo.gitdir, oid, cache: repo.cache })
    .then(() => true)
    .catch(() => false);
}

export interface FetchCommitRequest {
  repo: GitRepo;
  http: HttpClient;
  remote: Remote;
  /** The remote ref to fetch (a branch name or a full ref). */
  ref: string;
  /** The commit the ref advertised; the fetch fails unless it arrives. */
  oid: string;
  /**
   * Ask for a thin pack (deltas against what we have) and complete it afterwards: about a third of the
   * bytes for a small change. Worth it when the local ref of the same name exists.
   */
  thin?: boolean;
  onProgress?: ProgressCallback;
}

/** isomorphic-git fails after the pack is stored when the remote has no HEAD (a bare state repository). */
function isMissingRemoteHead(error: unknown): boolean {
  const e = error as { code?: string; data?: { what?: string } };
  return e.code === 'NotFoundError' && e.data?.what === 'HEAD';
}

/**
 * Fetches one ref's history (no depth: a shallow history would break descent checks), telling the server
 * what the local ref of the same name has. Leaves no remote-tracking refs behind: only the caller decides
 * which local ref may point at what arrived. Throws unless the commit is local afterwards.
 */
export async function fetchCommit(request: FetchCommitRequest): Promise<void> {
  const { repo, remote } = request;
  const packs = request.thin ? await listPacks(repo) : undefined;
  try {
    await git.fetch({
      fs: repo.fs,
      http: request.thin ? requestThinPacks(request.http) : request.http,
      gitdir: repo.gitdir,
      cache: repo.cache,
      url: remote.url,
      headers: remote.headers,
      remote: 'mirror',
      ref: request.ref,
      singleBranch: true,
      tags: false,
      ...(request.onProgress ? { onProgress: request.onProgress } : {}),
    });
  } catch (error) {
    if (!isMissingRemoteHead(error)) throw error;
  } finally {
    // isomorphic-git moves its remote-tracking ref even when the pack turns out incomplete.
    const tracking = await git.listRefs({ fs: repo.fs, gitdir: repo.gitdir, filepath: 'refs/remotes' });
    for (const name of tracking) {
      await git.deleteRef({ fs: repo.fs, gitdir: repo.gitdir, ref: `refs/remotes/${name}` });
    }
  }
  if (packs) await completeThinPacks(repo, packs);
  if (!(await hasCommit(repo, request.oid))) throw new Error(`the fetch did not bring commit ${request.oid}`);
}
