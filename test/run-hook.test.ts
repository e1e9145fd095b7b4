import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from './support/wait-until.js';
import { runHook, type HookRequest } from '../src/agent/run-hook.js';

let work: string;
let slot: string;

beforeAll(() => {
  work = realpathSync(mkdtempSync(join(tmpdir(), 'gitfleet-run-hook-')));
  slot = join(work, 'slot');
  mkdirSync(slot);
});

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

/** Writes a `#!/bin/sh` script into the slot (or `dir`) and makes it executable. */
function script(name: string, body: string, dir = slot, mode = 0o755): string {
  const file = join(dir, name);
  mkdirSync(join(file, '..'), { recursive: true });
  writeFileSync(file, `#!/bin/sh\n${body}\n`);
  chmodSync(file, mode);
  return file;
}

function request(path: string, overrides: Partial<HookRequest> = {}): HookRequest {
  return { hook: 'install', path, slot, env: {}, timeoutMs: 30_000, ...overrides };
}

/** Whether a process is running; a zombie (exited, not yet reaped) counts as gone. */
function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] !== 'Z';
  } catch {
    return false;
  }
}

async function waitUntilGone(pid: number): Promise<boolean> {
  await waitUntil(() => !isRunning(pid), `pid ${pid} to end`, { timeoutMs: 5000, pollMs: 50 }).catch(
    () => undefined,
  );
  return !isRunning(pid);
}

function killIfRunning(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

describe('runHook', () => {
  it('reports a hook that exits 0 with its output', async () => {
    script('install.sh', 'echo installing; echo warning >&2');
    const result = await runHook(request('./install.sh'));
    expect(result).toMatchObject({
      ok: true,
      exitCode: 0,
      signal: null,
      timedOut: false,
      output: 'installing\nwarning\n',
      message: 'install hook ./install.sh exited with 0',
    });
    expect(result.durationMs).toBeGreaterThan(0);
    expect(result.durationMs).toBeLessThan(30_000);
  });

  it('reports a non-zero exit code', async () => {
    script('bin/check', 'echo broken; exit 3');
    const result = await runHook(request('bin/check', { hook: 'check' }));
    expect(result).toMatchObject({
      ok: false,
      exitCode: 3,
      timedOut: false,
      output: 'broken\n',
      message: 'check hook bin/check exited with 3',
    });
  });

  it('runs in the slot with a clean environment', async () => {
    script('env.sh', 'pwd; env | sort');
    process.env.GITFLEET_TEST_LEAK = 'from-the-agent';
    process.env.HTTPS_PROXY = 'http://user:secret@proxy.invalid:3128';
    try {
      const result = await runHook(
        request('env.sh', { env: { GITFLEET_PACKET: 'logger', GITFLEET_SLOT: slot } }),
      );
      expect(result.ok).toBe(true);
      const [cwd, ...lines] = result.output.trim().split('\n');
      expect(cwd).toBe(slot);
      const env = Object.fromEntries(
        lines.map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
      );
      expect(env).toMatchObject({
        GITFLEET_PACKET: 'logger',
        GITFLEET_SLOT: slot,
        PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
        HOME: slot,
        LANG: 'C.UTF-8',
      });
      expect(env).not.toHaveProperty('GITFLEET_TEST_LEAK');
      expect(env).not.toHaveProperty('HTTPS_PROXY');
      expect(result.output).not.toContain('secret');
    } finally {
      delete process.env.GITFLEET_TEST_LEAK;
      delete process.env.HTTPS_PROXY;
    }
  });

  it('refuses environment variables not named GITFLEET_*', async () => {
    await expect(runHook(request('env.sh', { env: { TOKEN: 'x' } }))).rejects.toThrow(/GITFLEET_/);
  });

  it('keeps only the last 4096 bytes of a hook that prints 2 MB', async () => {
    // 2 MiB of 'é' (2 bytes each, so a cut may fall inside one), then a last line.
    script('loud.sh', `head -c 1048576 /dev/zero | tr '\\0' x | sed 's/x/é/g'\necho; echo the-last-line`);
    const result = await runHook(request('loud.sh'));
    expect(result.ok).toBe(true);
    expect(Buffer.byteLength(result.output)).toBeLessThanOrEqual(4096);
    expect(Buffer.byteLength(result.output)).toBeGreaterThan(4000);
    expect(result.output.startsWith('…é')).toBe(true);
    expect(result.output.endsWith('\nthe-last-line\n')).toBe(true);
    expect(result.output).not.toContain('\ufffd');
  });

  it('kills the whole process group on timeout', async () => {
    const pidFile = join(work, 'background.pid');
    script('hang.sh', `sleep 1000 &\necho $! > '${pidFile}'\nsleep 1000`);
    const result = await runHook(request('hang.sh', { timeoutMs: 500 }));
    const background = Number(readFileSync(pidFile, 'utf8'));
    try {
      expect(result).toMatchObject({
        ok: false,
        timedOut: true,
        signal: 'SIGTERM',
        message: 'install hook hang.sh timed out after 0.5 s',
      });
      expect(await waitUntilGone(background)).toBe(true);
    } finally {
      killIfRunning(background);
    }
  });

  it('sends SIGKILL after the grace to a hook that ignores SIGTERM', async () => {
    script('stubborn.sh', "trap '' TERM\necho started\nwhile :; do sleep 1; done");
    const result = await runHook(request('stubborn.sh', { timeoutMs: 500, killGraceMs: 500 }));
    expect(result).toMatchObject({ ok: false, timedOut: true, signal: 'SIGKILL', output: 'started\n' });
  });

  it('returns when the hook exits, even if a background child holds its stdout', async () => {
    const pidFile = join(work, 'daemon.pid');
    script('daemon.sh', `sleep 1000 &\necho $! > '${pidFile}'\necho started`);
    const result = await runHook(request('daemon.sh'));
    const daemon = Number(readFileSync(pidFile, 'utf8'));
    try {
      expect(result).toMatchObject({ ok: true, exitCode: 0, output: 'started\n' });
      // A hook may start a daemon: it is left running.
      expect(isRunning(daemon)).toBe(true);
    } finally {
      killIfRunning(daemon);
    }
  });

  describe('refuses a path that leaves the slot', () => {
    it.each([
      ['../x.sh', 'install hook ../x.sh is not inside the slot'],
      ['bin/../../x.sh', 'install hook bin/../../x.sh is not inside the slot'],
      ['/bin/true', 'install hook /bin/true is not inside the slot'],
    ])('%s', async (path, message) => {
      script('x.sh', 'echo escaped', work);
      const result = await runHook(request(path));
      expect(result).toMatchObject({ ok: false, exitCode: null, timedOut: false, output: '' });
      expect(result.message).toContain(message);
    });

    it('a symlink to a script outside the slot', async () => {
      script('outside.sh', 'echo escaped', work);
      symlinkSync(join(work, 'outside.sh'), join(slot, 'linked.sh'));
      const result = await runHook(request('./linked.sh'));
      expect(result).toMatchObject({ ok: false, output: '' });
      expect(result.message).toContain('install hook ./linked.sh is not inside the slot');
    });
  });

  it('follows a symlink that stays inside the slot', async () => {
    script('real/uninstall.sh', 'echo removed');
    symlinkSync('real/uninstall.sh', join(slot, 'uninstall'));
    const result = await runHook(request('uninstall', { hook: 'uninstall' }));
    expect(result).toMatchObject({ ok: true, output: 'removed\n' });
  });

  it('reports a missing file', async () => {
    const result = await runHook(request('./missing.sh'));
    expect(result).toMatchObject({
      ok: false,
      exitCode: null,
      message: 'install hook ./missing.sh not found',
    });
  });

  it('reports a file that is not executable', async () => {
    script('plain.sh', 'echo ran', slot, 0o644);
    const result = await runHook(request('plain.sh'));
    expect(result).toMatchObject({ ok: false, exitCode: null, output: '' });
    expect(result.message).toMatch(/^install hook plain\.sh is not executable/);
  });

  it('refuses a file without a #! line instead of running it with a shell', async () => {
    writeFileSync(join(slot, 'bare.sh'), 'echo ran\n', { mode: 0o755 });
    const result = await runHook(request('bare.sh'));
    expect(result).toMatchObject({ ok: false, output: '' });
    expect(result.message).toMatch(/^install hook bare\.sh is not executable.*ENOEXEC/);
  });

  it('reports a script whose interpreter is missing', async () => {
    writeFileSync(join(slot, 'odd.sh'), '#!/nonexistent/interpreter\n', { mode: 0o755 });
    const result = await runHook(request('odd.sh'));
    expect(result).toMatchObject({ ok: false, exitCode: null });
    expect(result.message).toContain('interpreter was not found');
  });
});
