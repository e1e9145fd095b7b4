import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const projectRoot = fileURLToPath(new URL('../../', import.meta.url));

/** Builds dist/ once if a test run starts without `command` built (npm run check builds first). */
export function ensureBuilt(command = 'plan'): void {
  if (!existsSync(`${projectRoot}dist/cli/commands/${command}.js`)) {
    execFileSync('npm', ['run', 'build'], { cwd: projectRoot, stdio: 'ignore' });
  }
}

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * The environment for a CLI child: the test's, without NODE_ENV (vitest sets `test`, with which oclif
 * loads the commands from src/ through tsx instead of the built dist/).
 */
export function cliEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  delete env.NODE_ENV;
  return env;
}

/** Runs `gitfleet ARGS` as a real process, exactly as a user would. */
export function runCli(args: readonly string[], cwd = projectRoot): CliResult {
  const result = spawnSync(process.execPath, [`${projectRoot}bin/run.js`, ...args], {
    cwd,
    encoding: 'utf8',
    env: cliEnv(),
    timeout: 60_000,
  });
  if (result.error) throw result.error;
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Runs the CLI with --json and parses stdout, which must be one JSON document. */
export function runCliJson<T = unknown>(
  args: readonly string[],
  cwd = projectRoot,
): { status: number | null; json: T } {
  const result = runCli([...args, '--json'], cwd);
  return { status: result.status, json: JSON.parse(result.stdout) as T };
}

export interface CliExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Starts `gitfleet ARGS` as a child process without waiting for it (never spawnSync when the servers
 * answering it live in this process, or to signal it): the child, and its exit with all it printed. A
 * child still running after `timeoutMs` is killed and its exit rejects.
 */
export function startCli(
  args: readonly string[],
  env = cliEnv(),
  timeoutMs = 60_000,
): { child: ChildProcess; exited: Promise<CliExit> } {
  const child = spawn(process.execPath, [`${projectRoot}bin/run.js`, ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<CliExit>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`gitfleet ${args.join(' ')} still running after ${timeoutMs / 1000} s:\n${stderr}`));
    }, timeoutMs);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return { child, exited };
}
