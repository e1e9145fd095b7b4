import * as fs from 'node:fs';
import { join } from 'node:path';
import git, { type HttpClient, type ProgressCallback, type ServerRef } from 'isomorphic-git';
import { shortRevision } from '../reconciler/summarise-status.js';
import { GitfleetError } from '../schema/gitfleet-error.js';
import { fetchCommit, hasCommit } from './fetch-commit.js';
import { reuseAdvertisement } from './http-client.js';
import type { GitRepo } from './git-repo.js';
import type { Remote } from './remote.js';

/** The ref that holds the signed freshness timestamp (DESIGN.md §3 step 2). */
export const TIMESTAMP_REF = 'refs/gitfleet/timestamp';
/** Where fetched, not yet verified tips are kept; `acceptRevision` moves the branch itself. */
const INCOMING = 'refs/gitfleet/incoming';

export interface SyncRequest {
  repo: GitRepo;
  http: HttpClient;
  /** Mirrors in order of preference. */
  remotes: readonly Remote[];
  /** The source branch, e.g. `main`. */
  branch: string;
  /** Also fetch the timestamp ref when it moved. */
  timestamp: boolean;
  /** The operator's override: take a tip older than the accepted revision instead of skipping it. */
  allowRollback?: boolean;
  /**
   * Ask for thin packs once the device has the branch: about a third of the bytes for a small change, at
   * the cost of completing the pack locally afterwards (tens of milliseconds). For metered links.
   */
  thinPacks?: boolean;
  /** Why a mirror was skipped, as it happens. */
  onSkip?: (remote: string, reason: string) => void;
  onProgress?: ProgressCallback;
}

export interface SyncResult {
  /** The mirror that answered (credentials never appear here). */
  remote: string;
  /** The tip the mirror serves; its objects are local once `moved` is true. Not verified yet. */
  tip: string;
  /** The commit the timestamp ref points to at that mirror, when asked for and present. */
  timestamp: string | undefined;
  /** False when the tip is the accepted revision: the poll cost one ref advertisement. */
  moved: boolean;
  skipped: { remote: string; reason: string }[];
}

/** The last accepted (verified) revision of the branch, if any. */
export async function acceptedRevision(repo: GitRepo, branch: string): Promise<string | undefined> {
  return git
    .resolveRef({ fs: repo.fs, gitdir: repo.gitdir, ref: `refs/heads/${branch}` })
    .catch(() => undefined);
}

/**
 * Records a verified revision: the branch moves to it, so the next fetch tells the server what we have and
 * the next verification checks descent from it. Call only after `verifyRevision` passed.
 */
export async function acceptRevision(repo: GitRepo, branch: string, tip: string, timestamp?: string) {
  const { fs, gitdir } = repo;
  await git.writeRef({ fs, gitdir, ref: `refs/heads/${branch}`, value: tip, force: true });
  if (timestamp) await git.writeRef({ fs, gitdir, ref: TIMESTAMP_REF, value: timestamp, force: true });
}

/** The device's local bare repository (`<state>/source.git`): the verified source and its own state ref. */
export function sourceRepo(stateDir: string): GitRepo {
  const dir = join(stateDir, 'source.git');
  return { fs, dir, gitdir: dir, cache: {} };
}

/** Creates the device's local bare repository for the source if it does not exist yet. */
export async function initSourceRepo(repo: GitRepo): Promise<void> {
  await git.init({ fs: repo.fs, gitdir: repo.gitdir, bare: true, defaultBranch: 'main' });
  // isomorphic-git's fetch needs a refspec for the remote it writes; we place our refs ourselves.
  await git.setConfig({
    fs: repo.fs,
    gitdir: repo.gitdir,
    path: 'remote.mirror.fetch',
    value: '+refs/heads/*:refs/remotes/mirror/*',
  });
}

/** True when `older` is a proper ancestor of `newer` (both local). */
export async function isAncestor(repo: GitRepo, older: string, newer: string): Promise<boolean> {
  if (older === newer) return false;
  return git.isDescendent({
    fs: repo.fs,
    gitdir: repo.gitdir,
    oid: newer,
    ancestor: older,
    depth: -1,
    cache: repo.cache,
  });
}

function describe(error: unknown): string {
  if (error instanceof GitfleetError) return error.message;
  const e = error as { code?: string; message?: string };
  return [e.code, e.message].filter(Boolean).join(': ').split('\n')[0]?.slice(0, 300) ?? 'unknown error';
}

/**
 * Brings the source branch from the first mirror that serves a usable tip. A mirror is skipped (with its
 * reason) when it cannot be reached or answers garbage, lacks the branch, or serves the accepted revision's
 * ancestor (an older tip). When the tip equals the accepted revision nothing is fetched: one request.
 * Throws `source_unreachable` (retryable) when every mirror was skipped. The tip is not verified here.
 */
export async function syncSource(request: SyncRequest): Promise<SyncResult> {
  const { repo, branch } = request;
  const accepted = await acceptedRevision(repo, branch);
  const skipped: SyncResult['skipped'] = [];
  const skip = (remote: string, reason: string) => {
    skipped.push({ remote, reason });
    request.onSkip?.(remote, reason);
  };
  for (const remote of request.remotes) {
    const http = reuseAdvertisement(request.http);
    try {
      const refs: ServerRef[] = await git.listServerRefs({
        http,
        url: remote.url,
        headers: remote.headers,
        protocolVersion: 1,
      });
      const tip = refs.find((r) => r.ref === `refs/heads/${branch}`)?.oid;
      const advertised = request.timestamp ? refs.find((r) => r.ref === TIMESTAMP_REF)?.oid : undefined;
      if (!tip) {
        skip(remote.url, `has no branch ${branch}`);
        continue;
      }
      const known = await hasCommit(repo, tip);
      // Asked newest-first: walking back from a newer tip finds the accepted revision at once, while
      // proving "older" walks the accepted revision's whole history.
      const older = async () =>
        !request.allowRollback &&
        accepted !== undefined &&
        !(await isAncestor(repo, accepted, tip)) &&
        (await isAncestor(repo, tip, accepted));
      const olderReason = `serves ${shortRevision(tip)}, older than the accepted ${shortRevision(accepted ?? '')}`;
      if (known && (await older())) {
        skip(remote.url, olderReason);
        continue;
      }
      const timestampKnown = !advertised || (await hasCommit(repo, advertised));
      if (tip === accepted && timestampKnown) {
        return { remote: remote.url, tip, timestamp: advertised, moved: false, skipped };
      }
      if (!known)
        await fetchCommit({
          ...request,
          http,
          remote,
          ref: branch,
          oid: tip,
          thin: request.thinPacks === true && accepted !== undefined,
        });
      // A timestamp that cannot be fetched (not a commit, say) counts as none: verification decides
      // whether one is needed, and says so with stale_revision rather than a retryable sync error.
      const timestamp =
        timestampKnown ||
        (await fetchCommit({ ...request, http, remote, ref: TIMESTAMP_REF, oid: advertised }).then(
          () => true,
          () => false,
        ))
          ? advertised
          : undefined;
      if (await older()) {
        skip(remote.url, olderReason);
        continue;
      }
      await git.writeRef({
        fs: repo.fs,
        gitdir: repo.gitdir,
        ref: `${INCOMING}/${branch}`,
        value: tip,
        force: true,
      });
      return { remote: remote.url, tip, timestamp, moved: true, skipped };
    } catch (error) {
      skip(remote.url, describe(error));
    }
  }
  throw new GitfleetError(
    'source_unreachable',
    `no mirror served ${branch}: ${skipped.map((s) => `${s.remote}: ${s.reason}`).join('; ')}`,
    { retryable: true },
  );
}
