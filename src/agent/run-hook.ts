import { spawn, type ChildProcess } from 'node:child_process';
import { open, realpath, stat } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { isBelow } from './is-inside.js';
import type { HookName } from './add-packet.js';

export interface HookRequest {
  hook: HookName;
  /** The path as the packet manifest writes it, e.g. `./install.sh` or `bin/check`: relative to the slot. */
  path: string;
  /** Absolute slot directory; the hook's working directory. */
  slot: string;
  /**
   * `GITFLEET_*` variables. The hook sees only these plus a fixed `PATH`, `LANG=C.UTF-8` and `HOME` set to
   * the slot (a hook that writes dotfiles writes them into its own slot, which goes away with it).
   */
  env: Readonly<Record<string, string>>;
  timeoutMs: number;
  /** Grace between SIGTERM and SIGKILL when the timeout hits; default 5000. */
  killGraceMs?: number;
}

export interface HookResult {
  /** Exit code 0, no signal, not timed out. */
  ok: boolean;
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  durationMs: number;
  /**
   * Tail of stdout and stderr interleaved as they arrive, at most 4096 bytes of UTF-8 (cut at a character
   * boundary, prefixed with '…' when cut).
   */
  output: string;
  /** One line for the state record, e.g. `install hook ./install.sh exited with 3`. */
  message: string;
}

const hookPath = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const outputLimit = 4096;
const defaultKillGraceMs = 5000;
/** How long the pipes are still read after the hook exited: a background child may hold them open. */
const drainMs = 200;

/**
 * Runs one hook of a packet in its slot and reports how it ended.
 *
 * - The path must name a regular file inside the slot: absolute paths, `..` components and symlinks that
 *   resolve outside the slot are refused. The file runs directly (no shell), so it must be an ELF binary
 *   or a script with a `#!` line; a file with neither is refused rather than handed to `/bin/sh`.
 * - The environment is clean: nothing of the agent's own (tokens, proxies) reaches the hook. Its working
 *   directory is the slot, stdin is `/dev/null`.
 * - The hook leads its own process group. On timeout the whole group gets SIGTERM, then SIGKILL after
 *   `killGraceMs`. A hook that exits in time may leave processes behind (a daemon it started): they are
 *   not killed, and their open pipes are read for at most 200 ms after the hook exited, never waited on.
 *   After a timeout the result comes once the hook itself has exited; stragglers of the group still get
 *   their SIGKILL when the grace ends, after this function returned.
 * - At most the last 4096 bytes of output are kept, whatever the hook prints.
 *
 * Never throws for anything the hook or its path does: failures come back as `ok: false` with a message.
 * Throws only for a request that breaks this contract (a variable not named `GITFLEET_*`).
 */
export async function runHook(request: HookRequest): Promise<HookResult> {
  const env = hookEnvironment(request);
  const label = `${request.hook} hook ${displayPath(request.path)}`;
  const started = performance.now();
  const checked = await checkHookFile(request.slot, request.path);
  if (typeof checked === 'string') return refused(`${label} ${checked}`, started);
  return await runProcess(request, checked.file, env, label, started);
}

function hookEnvironment(request: HookRequest): Record<string, string> {
  for (const [name, value] of Object.entries(request.env)) {
    if (!/^GITFLEET_[A-Z0-9_]*$/.test(name)) {
      throw new TypeError(`hook environment variable ${JSON.stringify(name)} is not named GITFLEET_*`);
    }
    if (value.includes('\0')) throw new TypeError(`hook environment variable ${name} contains a NUL byte`);
  }
  return { ...request.env, PATH: hookPath, HOME: request.slot, LANG: 'C.UTF-8' };
}

/** A path fit for a one-line message: control characters (a newline in a file name) are escaped. */
function displayPath(path: string): string {
  // eslint-disable-next-line no-control-regex
  return /[\u0000-\u001f\u007f]/.test(path) ? JSON.stringify(path) : path;
}

function refused(message: string, started: number): HookResult {
  return {
    ok: false,
    exitCode: null,
    signal: null,
    timedOut: false,
    durationMs: Math.round(performance.now() - started),
    output: '',
    message,
  };
}

/** The real path of the hook's file, or why it cannot run (the end of a message after the hook's name). */
async function checkHookFile(slot: string, path: string): Promise<{ file: string } | string> {
  if (path === '' || path.includes('\0')) return 'is not a path';
  if (isAbsolute(path)) return 'is not inside the slot (absolute path)';
  if (path.split(/[/\\]/).includes('..')) return "is not inside the slot ('..' in the path)";
  let file: string;
  try {
    const realSlot = await realpath(slot);
    file = await realpath(join(realSlot, path));
    if (!isBelow(realSlot, file)) {
      return 'is not inside the slot (a link resolves outside it)';
    }
    if (!(await stat(file)).isFile()) return 'is not a regular file';
    if (!(await hasRunnableHeader(file))) {
      return 'is not executable: neither a #! script nor an ELF binary (ENOEXEC)';
    }
  } catch (error) {
    return fileErrorReason(error);
  }
  return { file };
}

/**
 * Whether the kernel runs the file itself. Without this check a text file without `#!` would still run:
 * libuv's execvp hands ENOEXEC files to `/bin/sh`, a shell the manifest never asked for.
 */
async function hasRunnableHeader(file: string): Promise<boolean> {
  const handle = await open(file, 'r');
  try {
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(4), 0, 4, 0);
    const head = buffer.subarray(0, bytesRead);
    return head.subarray(0, 2).toString('latin1') === '#!' || head.toString('latin1') === '\x7fELF';
  } finally {
    await handle.close();
  }
}

function fileErrorReason(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT':
      return 'not found';
    case 'ENOTDIR':
      return 'not found (a parent is not a directory)';
    case 'EACCES':
      return 'is not executable (EACCES)';
    case 'ELOOP':
      return 'not found (symlink loop)';
    case 'ENOEXEC':
      return 'is not executable: not a format this machine runs (ENOEXEC)';
    default:
      return `could not be started: ${code ?? (error instanceof Error ? error.message : String(error))}`;
  }
}

/** Spawns the checked file; settles once the hook has exited and its pipes were drained or cut. */
function runProcess(
  request: HookRequest,
  file: string,
  env: Record<string, string>,
  label: string,
  started: number,
): Promise<HookResult> {
  return new Promise((resolve) => {
    let child: ChildProcess;
    try {
      child = spawn(file, [], { cwd: request.slot, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    } catch (error) {
      resolve(refused(`${label} ${spawnErrorReason(error)}`, started));
      return;
    }
    const output = new OutputTail(outputLimit);
    child.stdout?.on('data', (chunk: Buffer) => output.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => output.push(chunk));
    let timedOut = false;
    let killTimer: NodeJS.Timeout | undefined;
    const timeout = setTimeout(() => {
      timedOut = true;
      signalGroup(child, 'SIGTERM');
      killTimer = setTimeout(() => signalGroup(child, 'SIGKILL'), request.killGraceMs ?? defaultKillGraceMs);
    }, request.timeoutMs);
    child.once('error', (error) => {
      // Only a failed spawn gets here: this module never calls child.kill() or writes to stdin.
      clearTimeout(timeout);
      resolve(refused(`${label} ${spawnErrorReason(error)}`, started));
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timeout);
      void drained(child).then(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
        // After a timeout the SIGKILL stays due while anything of the group is left to receive it.
        if (killTimer !== undefined && !signalGroup(child, 0)) clearTimeout(killTimer);
        let message: string;
        if (timedOut) message = `${label} timed out after ${request.timeoutMs / 1000} s`;
        else if (signal !== null) message = `${label} was killed by ${signal}`;
        else message = `${label} exited with ${code}`;
        resolve({
          ok: code === 0 && signal === null && !timedOut,
          exitCode: code,
          signal,
          timedOut,
          durationMs: Math.round(performance.now() - started),
          output: output.text(),
          message,
        });
      });
    });
  });
}

/** A spawn error of a file that was there a moment ago: ENOENT then means its interpreter is missing. */
function spawnErrorReason(error: unknown): string {
  if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
    return 'could not be started: its #! interpreter was not found (ENOENT)';
  }
  return fileErrorReason(error);
}

/** Resolves when both pipes are closed, or after `drainMs` when something else still holds them open. */
function drained(child: ChildProcess): Promise<void> {
  const streams = [child.stdout, child.stderr].filter((stream) => stream !== null && !stream.closed);
  if (streams.length === 0) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, drainMs);
    let open = streams.length;
    for (const stream of streams) {
      stream?.once('close', () => {
        open -= 1;
        if (open === 0) {
          clearTimeout(timer);
          resolve();
        }
      });
    }
  });
}

/**
 * Sends `signal` to the process group the hook leads (`detached`); false when nothing of it could get it.
 * Signal 0 only asks whether any process of the group is left.
 */
function signalGroup(child: ChildProcess, signal: NodeJS.Signals | 0): boolean {
  if (child.pid === undefined) return false;
  try {
    process.kill(-child.pid, signal);
    return true;
  } catch {
    // ESRCH: the group is gone. EPERM: only processes we may not signal are left (setuid); nothing to do.
    return false;
  }
}

/** The last `limit` bytes written, in a fixed buffer: a hook printing gigabytes costs no memory. */
class OutputTail {
  private readonly buffer: Buffer;
  /** Where the next byte goes. */
  private end = 0;
  private total = 0;

  constructor(private readonly limit: number) {
    this.buffer = Buffer.alloc(limit);
  }

  push(chunk: Buffer): void {
    this.total += chunk.length;
    const kept = chunk.subarray(Math.max(0, chunk.length - this.limit));
    const first = Math.min(kept.length, this.limit - this.end);
    kept.copy(this.buffer, this.end, 0, first);
    kept.copy(this.buffer, 0, first);
    this.end = (this.end + kept.length) % this.limit;
  }

  /** The tail as text: at most `limit` bytes of UTF-8, starting on a character, '…' first when cut. */
  text(): string {
    const cut = this.total > this.limit;
    let bytes = cut
      ? Buffer.concat([this.buffer.subarray(this.end), this.buffer.subarray(0, this.end)])
      : this.buffer.subarray(0, this.total);
    if (cut) bytes = bytes.subarray(characterStart(bytes, 0));
    // Decoding turns each broken sequence into U+FFFD (3 bytes), so measure again after it.
    const encoded = Buffer.from(bytes.toString('utf8'));
    if (!cut && encoded.length <= this.limit) return encoded.toString('utf8');
    const marker = '…';
    const room = this.limit - Buffer.byteLength(marker);
    return (
      marker + encoded.subarray(characterStart(encoded, Math.max(0, encoded.length - room))).toString('utf8')
    );
  }
}

/** The first offset at or after `from` that is not in the middle of a UTF-8 sequence. */
function characterStart(bytes: Buffer, from: number): number {
  let start = from;
  while (start < bytes.length && ((bytes[start] ?? 0) & 0xc0) === 0x80) start += 1;
  return start;
}
