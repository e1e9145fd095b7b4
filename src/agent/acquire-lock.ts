import { randomUUID } from 'node:crypto';
import { link, mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { GitfleetError } from '../schema/gitfleet-error.js';
import { readIfExists } from './read-if-exists.js';

export interface AgentLock {
  /** The lock file, as an absolute path. */
  readonly path: string;
  /** Removes the lock file if it still holds this lock's content; idempotent. */
  release(): Promise<void>;
}

export interface AcquireLockOptions {
  /** Wait for a held lock instead of throwing `agent_locked`. */
  wait?: boolean;
  /** How often a waiter looks again; default 200. */
  pollMs?: number;
  /** Ends a wait (or an acquisition about to start) with the signal's reason. */
  signal?: AbortSignal;
}

/** What a lock file holds, as JSON. */
interface LockOwner {
  pid: number;
  /** The owner's start time in clock ticks after boot (`/proc/<pid>/stat`): tells a reused pid apart. */
  startTicks?: number;
  /** `/proc/sys/kernel/random/boot_id`: a lock from before a reboot is stale whatever its pid. */
  bootId?: string;
  acquiredAt: string;
  /** Makes each acquisition's content unique, so "still ours" is a plain comparison. */
  token: string;
}

/** What deciding whether a lock is held needs of its file. */
type LockHolder = Omit<LockOwner, 'token'>;

/** Lock files this process holds, with their owner: a lock naming our own pid is ours only when listed. */
const heldPaths = new Map<string, LockHolder>();

/**
 * One agent per device. Takes the lock file at `path` (creating its folder) and returns it held.
 *
 * The file is created complete or not at all: the content goes to a uniquely named file in the same
 * folder, which is then hard-linked to `path` (atomic; fails when the lock exists). A lock is held while
 * the process it names runs: same boot, pid alive (signal 0 succeeds or fails with EPERM) and, where
 * `/proc` tells, started at the recorded time. Any other lock file (dead or reused pid, an earlier boot,
 * unreadable content such as an empty file after a power loss) is stale: an agent killed with SIGKILL
 * leaves one. A stale lock is removed only if it still holds the content that was judged, then taking it
 * is tried again.
 *
 * Throws `GitfleetError('agent_locked', retryable)` when a live process (this one included) holds the
 * lock and `wait` is not set. With `wait`, polls every `pollMs` until the lock is free; aborting `signal`
 * ends the wait with its reason. File system errors other than the lock existing are thrown as they are
 * (a file system without hard links cannot hold this lock).
 */
export async function acquireLock(path: string, options: AcquireLockOptions = {}): Promise<AgentLock> {
  const { wait = false, pollMs = 200, signal } = options;
  const lockPath = resolve(path);
  await mkdir(dirname(lockPath), { recursive: true });
  for (;;) {
    signal?.throwIfAborted();
    // Made for each attempt, so that `acquiredAt` says when the lock was taken, not when waiting began.
    const owner = await ownerRecord();
    const content = `${JSON.stringify(owner)}\n`;
    const holder = heldPaths.get(lockPath) ?? (await takeOrFindHolder(lockPath, owner, content));
    if (holder === undefined) return heldLock(lockPath, owner, content);
    if (!wait) {
      throw new GitfleetError(
        'agent_locked',
        `another agent (pid ${holder.pid}) holds the lock ${lockPath}; it has held it since ${holder.acquiredAt}`,
        {
          hint: 'wait for the running agent to finish, or stop it; a lock left by a dead agent is taken over',
          retryable: true,
        },
      );
    }
    await sleep(pollMs, undefined, { signal }).catch((error: unknown) => {
      throw signal?.aborted ? signal.reason : error;
    });
  }
}

/**
 * Takes the lock (undefined) or returns the live owner that holds it, removing stale locks on the way.
 * Each round either takes the lock, finds it held, or sees the file changed by someone else.
 */
async function takeOrFindHolder(
  path: string,
  owner: LockOwner,
  content: string,
): Promise<LockHolder | undefined> {
  for (;;) {
    if (await tryCreate(path, owner, content)) return undefined;
    const seen = await readIfExists(path);
    if (seen === undefined) continue;
    const holder = parseHolder(seen);
    if (holder !== undefined && (await isLive(holder, path))) return holder;
    await removeIfUnchanged(path, seen);
  }
}

function heldLock(path: string, owner: LockOwner, content: string): AgentLock {
  let released: Promise<void> | undefined;
  return {
    path,
    release() {
      released ??= (async () => {
        try {
          await removeIfUnchanged(path, content);
        } finally {
          // Unlisted only once the file is gone: until then, other calls in this process see it held.
          if (heldPaths.get(path) === owner) heldPaths.delete(path);
        }
      })();
      return released;
    },
  };
}

async function ownerRecord(): Promise<LockOwner> {
  const [startTicks, bootId] = await Promise.all([processStartTicks(process.pid), currentBootId()]);
  return {
    pid: process.pid,
    ...(startTicks === undefined ? {} : { startTicks }),
    ...(bootId === undefined ? {} : { bootId }),
    acquiredAt: new Date().toISOString(),
    token: randomUUID(),
  };
}

/** Creates the lock file with `content` and lists it as held; false when it exists already. */
async function tryCreate(path: string, owner: LockOwner, content: string): Promise<boolean> {
  const temp = `${path}.${randomUUID()}.tmp`;
  await writeFile(temp, content, { flag: 'wx' });
  try {
    await link(temp, path);
    // Listed at once, before the next await: a concurrent call in this process must see it held.
    heldPaths.set(path, owner);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    await unlink(temp);
  }
}

/** The holder a lock file names; undefined for content no agent writes (empty, truncated, foreign). */
function parseHolder(content: string): LockHolder | undefined {
  let value: unknown;
  try {
    value = JSON.parse(content);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { pid, startTicks, bootId, acquiredAt } = value as Record<string, unknown>;
  if (typeof pid !== 'number' || !Number.isSafeInteger(pid) || pid <= 0) return undefined;
  return {
    pid,
    ...(typeof startTicks === 'number' ? { startTicks } : {}),
    ...(typeof bootId === 'string' ? { bootId } : {}),
    acquiredAt: typeof acquiredAt === 'string' ? acquiredAt : 'an unknown time',
  };
}

async function isLive(owner: LockHolder, path: string): Promise<boolean> {
  // Our own pid: another acquisition in this process holds it, or we restarted with a recycled pid.
  if (owner.pid === process.pid) return heldPaths.has(path);
  const bootId = await currentBootId();
  if (owner.bootId !== undefined && bootId !== undefined && owner.bootId !== bootId) return false;
  try {
    process.kill(owner.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const startTicks = await processStartTicks(owner.pid);
  return owner.startTicks === undefined || startTicks === undefined || startTicks === owner.startTicks;
}

/**
 * Removes the file at `path` if it holds `expected`. It is first renamed aside (atomic), so the content
 * compared is the content of the file removed; a file that changed since it was read (another agent took
 * the lock in between) is put back.
 */
async function removeIfUnchanged(path: string, expected: string): Promise<void> {
  const aside = `${path}.${randomUUID()}.stale`;
  try {
    await rename(path, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  try {
    if ((await readFile(aside, 'utf8')) === expected) return;
    await link(aside, path).catch((error: unknown) => {
      // Another agent took the lock in the instant this one was aside. Only one file can be the lock;
      // keeping the newer one is the best left to do (three agents racing over one stale lock).
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    });
  } finally {
    await unlink(aside);
  }
}

/** Field 22 of `/proc/<pid>/stat`; undefined where there is no such file (not Linux, process gone). */
async function processStartTicks(pid: number): Promise<number | undefined> {
  const stat = await readIfExists(`/proc/${pid}/stat`).catch(() => undefined);
  if (stat === undefined) return undefined;
  // The command name (field 2) may hold spaces and parentheses: count fields after its closing one.
  const ticks = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
  return Number.isSafeInteger(ticks) ? ticks : undefined;
}

let bootIdOnce: Promise<string | undefined> | undefined;

function currentBootId(): Promise<string | undefined> {
  bootIdOnce ??= readIfExists('/proc/sys/kernel/random/boot_id')
    .then((id) => id?.trim() || undefined)
    .catch(() => undefined);
  return bootIdOnce;
}
