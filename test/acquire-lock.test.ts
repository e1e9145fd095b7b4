import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acquireLock } from '../src/agent/acquire-lock.js';
import { GitfleetError } from '../src/schema/gitfleet-error.js';

let work: string;
let count = 0;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'gitfleet-lock-'));
});

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

/** A fresh lock path; its folder exists only when `withFolder` (acquireLock creates it). */
function lockPath(withFolder = false): string {
  count += 1;
  const folder = join(work, `case-${count}`);
  if (withFolder) mkdirSync(folder);
  return join(folder, 'agent.lock');
}

async function lockedError(promise: Promise<unknown>): Promise<GitfleetError> {
  const error = await promise.then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(error).toBeInstanceOf(GitfleetError);
  return error as GitfleetError;
}

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
  await once(child, 'exit');
  return child.pid!;
}

describe('acquireLock', () => {
  it('refuses a second acquisition, naming the holder', async () => {
    const path = lockPath();
    const lock = await acquireLock(path);
    const error = await lockedError(acquireLock(path));
    expect(error.code).toBe('agent_locked');
    expect(error.retryable).toBe(true);
    expect(error.message).toContain(`pid ${process.pid}`);
    expect(error.message).toContain(path);
    await lock.release();
  });

  it('writes the owner as JSON and leaves no temp files', async () => {
    const path = lockPath();
    const lock = await acquireLock(path);
    expect(lock.path).toBe(path);
    expect(JSON.parse(readFileSync(path, 'utf8'))).toMatchObject({ pid: process.pid });
    expect(readdirSync(join(path, '..'))).toEqual(['agent.lock']);
    await lock.release();
    expect(readdirSync(join(path, '..'))).toEqual([]);
  });

  it('can be taken again after release; release is idempotent', async () => {
    const path = lockPath();
    const first = await acquireLock(path);
    await Promise.all([first.release(), first.release()]);
    const second = await acquireLock(path);
    // A late release of the first lock does not remove the second.
    await first.release();
    expect(existsSync(path)).toBe(true);
    await lockedError(acquireLock(path));
    await second.release();
    expect(existsSync(path)).toBe(false);
  });

  it('refuses a lock held by another live process', async () => {
    const path = lockPath(true);
    const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' });
    writeFileSync(path, JSON.stringify({ pid: holder.pid, acquiredAt: '2025-01-01T00:00:00.000Z' }));
    try {
      const error = await lockedError(acquireLock(path));
      expect(error.message).toContain(`another agent (pid ${holder.pid}) holds the lock ${path}`);
      expect(readFileSync(path, 'utf8')).toContain(`${holder.pid}`);
    } finally {
      holder.kill('SIGKILL');
    }
  });

  it('takes over a lock left by a dead process', async () => {
    const path = lockPath(true);
    const pid = await deadPid();
    writeFileSync(path, JSON.stringify({ pid, acquiredAt: '2025-01-01T00:00:00.000Z' }));
    const lock = await acquireLock(path);
    expect(JSON.parse(readFileSync(path, 'utf8'))).toMatchObject({ pid: process.pid });
    await lock.release();
  });

  it('takes over a lock from an earlier boot even if its pid runs now', async () => {
    const path = lockPath(true);
    // pid 1 always runs; the boot id says it is not the process that wrote the lock.
    writeFileSync(path, JSON.stringify({ pid: 1, bootId: 'an-earlier-boot' }));
    const lock = await acquireLock(path);
    await lock.release();
  });

  it.each([
    ['garbage', 'not json at all'],
    ['empty (a power loss before the data reached the disk)', ''],
    ['no pid', '{"acquiredAt":"2025-01-01T00:00:00.000Z"}'],
  ])('takes over a lock with %s content', async (_name, content) => {
    const path = lockPath(true);
    writeFileSync(path, content);
    const lock = await acquireLock(path);
    expect(JSON.parse(readFileSync(path, 'utf8'))).toMatchObject({ pid: process.pid });
    await lock.release();
  });

  it('takes over a lock naming this process that this process does not hold', async () => {
    const path = lockPath(true);
    writeFileSync(path, JSON.stringify({ pid: process.pid }));
    const lock = await acquireLock(path);
    await lock.release();
  });

  it('waits for the holder to release', async () => {
    const path = lockPath();
    const holder = await acquireLock(path);
    let acquired = false;
    const waiter = acquireLock(path, { wait: true, pollMs: 10 }).then((lock) => {
      acquired = true;
      return lock;
    });
    await sleep(100);
    expect(acquired).toBe(false);
    await holder.release();
    const lock = await waiter;
    expect(JSON.parse(readFileSync(path, 'utf8'))).toMatchObject({ pid: process.pid });
    await lock.release();
  });

  it('ends a wait when the signal aborts, with its reason', async () => {
    const path = lockPath();
    const holder = await acquireLock(path);
    const controller = new AbortController();
    const waiter = acquireLock(path, { wait: true, pollMs: 10, signal: controller.signal });
    const reason = new Error('agent stopping');
    setTimeout(() => controller.abort(reason), 50);
    await expect(waiter).rejects.toBe(reason);
    await holder.release();
  });

  it('lets exactly one of two processes racing for it hold it', async () => {
    const path = lockPath();
    const module = fileURLToPath(new URL('../src/agent/acquire-lock.ts', import.meta.url));
    // Each child says `ready`, takes the lock on `go`, reports, and keeps what it got until stdin ends.
    const script = `
      import { createInterface } from 'node:readline';
      import { acquireLock } from ${JSON.stringify(module)};
      const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
      console.log('ready');
      await lines.next();
      let lock;
      try {
        lock = await acquireLock(${JSON.stringify(path)});
        console.log('held');
      } catch (error) {
        console.log('refused ' + error.code);
      }
      await lines.next();
      await lock?.release();
    `;
    const children = [0, 1].map(() =>
      spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
        stdio: ['pipe', 'pipe', 'inherit'],
      }),
    );
    try {
      const outputs = children.map((child) =>
        createInterface({ input: child.stdout })[Symbol.asyncIterator](),
      );
      for (const output of outputs) expect((await output.next()).value).toBe('ready');
      for (const child of children) child.stdin.write('go\n');
      const results: string[] = [];
      for (const output of outputs) results.push(String((await output.next()).value));
      expect(results.sort()).toEqual(['held', 'refused agent_locked']);
      for (const child of children) child.stdin.end();
      await Promise.all(children.map((child) => once(child, 'exit')));
      expect(existsSync(path)).toBe(false);
    } finally {
      for (const child of children) killChild(child);
    }
  });
});

function killChild(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}
