import git, { type HttpClient } from 'isomorphic-git';
import { formatDeviceStatus, type DeviceStatus } from '../schema/device-status.js';
import { shortRevision, summariseStatus } from '../reconciler/summarise-status.js';
import type { GitRepo } from './git-repo.js';
import type { Remote } from './remote.js';
import type { SshPrivateKey } from './ssh-key.js';
import { writeSignedCommit } from './write-signed-commit.js';

export const STATUS_FILE = 'status.yaml';

/** Where every device's state ref lives (`stateRef(id)` is this plus `/<id>`). */
export const STATE_REFS = 'refs/gitfleet/state';

/** The ref a device records its state on, outside refs/heads so forges and clones do not list it. */
export function stateRef(deviceId: string): string {
  return `${STATE_REFS}/${deviceId}`;
}

/** What the state remote is known to hold for the device: equal to the state ref once pushed. */
function pushedRef(deviceId: string): string {
  return `refs/gitfleet/pushed/${deviceId}`;
}

export interface StateTarget {
  repo: GitRepo;
  http: HttpClient;
  /** Where state is pushed; undefined keeps it local (push: false). */
  remote: Remote | undefined;
  deviceId: string;
  /** The device's own key: `git verify-commit` with its public key accepts every state commit. */
  key: SshPrivateKey;
  now: Date;
}

export interface RecordResult {
  /** The state ref's commit after this call. */
  commit: string;
  /** Whether a new state commit was written (the status bytes changed). */
  changed: boolean;
  /** Whether the state remote now has `commit`. */
  pushed: boolean;
  /** Why the push did not happen (offline, rejected twice); the commit waits for a later pass. */
  pushError: string | undefined;
}

/** The bytes of `status.yaml` in a state commit or its tree (ids both do), or undefined when it has none. */
export async function readStatusBlob(repo: GitRepo, treeOrCommit: string): Promise<Uint8Array | undefined> {
  const { fs, gitdir, cache } = repo;
  const read = await git
    .readBlob({ fs, gitdir, oid: treeOrCommit, filepath: STATUS_FILE, cache })
    .catch(() => undefined);
  return read?.blob;
}

/** The state commit's subject, in the words `status` uses: `pi-0042: Ready: Converged at 5f3c9a1e02b4`. */
function summary(status: DeviceStatus): string {
  const { summary: state } = summariseStatus({ ok: true, value: status, warnings: [] });
  return `${status.device}: ${state} at ${shortRevision(status.observedRevision) || 'no revision'}`;
}

async function writeState(target: StateTarget, text: string, message: string, parent: string | undefined) {
  const { fs, gitdir } = target.repo;
  const blob = await git.writeBlob({ fs, gitdir, blob: Buffer.from(text, 'utf8') });
  const tree = await git.writeTree({
    fs,
    gitdir,
    tree: [{ mode: '100644', path: STATUS_FILE, oid: blob, type: 'blob' }],
  });
  const commit = await writeSignedCommit(target.repo, {
    tree,
    parents: parent ? [parent] : [],
    message,
    author: { name: target.deviceId, email: `${target.deviceId}@devices.gitfleet.invalid` },
    time: Math.floor(target.now.getTime() / 1000),
    key: target.key,
  });
  await git.writeRef({ fs, gitdir, ref: stateRef(target.deviceId), value: commit, force: true });
  return commit;
}

async function push(target: StateTarget, remote: Remote, commit: string): Promise<void> {
  const { fs, gitdir, cache } = target.repo;
  const ref = stateRef(target.deviceId);
  const result = await git.push({
    fs,
    http: target.http,
    gitdir,
    cache,
    url: remote.url,
    headers: remote.headers,
    ref,
    remoteRef: ref,
  });
  const status = result.refs[ref];
  if (!result.ok || (status && !status.ok)) throw new Error(status?.error ?? result.error ?? 'push rejected');
  await git.writeRef({ fs, gitdir, ref: pushedRef(target.deviceId), value: commit, force: true });
}

/** The state remote's commit for the device (from the receive-pack advertisement), if it has one. */
async function remoteStateTip(target: StateTarget, remote: Remote): Promise<string | undefined> {
  const ref = stateRef(target.deviceId);
  const refs = await git.listServerRefs({
    http: target.http,
    url: remote.url,
    headers: remote.headers,
    forPush: true,
    protocolVersion: 1,
  });
  return refs.find((r) => r.ref === ref)?.oid;
}

/**
 * Records a device's status as `status.yaml` in a commit on its state ref, signed with the device key,
 * and pushes it. Idempotent: when the bytes did not change no commit is made. A push rejected as not
 * fast-forward (the remote ref moved, e.g. after a restore) is rebuilt on top of the remote's state commit
 * and pushed again, once; offline, the commit stays local and the next call pushes it. Never force-pushes.
 */
export async function recordState(target: StateTarget, status: DeviceStatus): Promise<RecordResult> {
  const { fs, gitdir } = target.repo;
  const text = formatDeviceStatus(status);
  const message = summary(status);
  const previous = await git
    .resolveRef({ fs, gitdir, ref: stateRef(target.deviceId) })
    .catch(() => undefined);
  const stored = previous === undefined ? undefined : await readStatusBlob(target.repo, previous);
  const changed = !previous || stored === undefined || Buffer.from(stored).toString('utf8') !== text;
  let commit = changed ? await writeState(target, text, message, previous) : previous;
  const { remote } = target;
  if (!remote) return { commit, changed, pushed: false, pushError: undefined };
  const pushed = await git.resolveRef({ fs, gitdir, ref: pushedRef(target.deviceId) }).catch(() => undefined);
  if (pushed === commit) return { commit, changed, pushed: true, pushError: undefined };
  try {
    await push(target, remote, commit);
  } catch (error) {
    const rejected = /fast-forward|rejected|fetch first/i.test(
      `${(error as Error).name} ${(error as Error).message}`,
    );
    if (!rejected) return { commit, changed, pushed: false, pushError: (error as Error).message };
    try {
      // The new commit's parent is the remote's tip; its objects are not needed to push on top of it, so
      // nothing is fetched from the state remote.
      const theirs = await remoteStateTip(target, remote);
      commit = await writeState(target, text, message, theirs);
      await push(target, remote, commit);
    } catch (again) {
      return { commit, changed: true, pushed: false, pushError: (again as Error).message };
    }
  }
  return { commit, changed, pushed: true, pushError: undefined };
}
