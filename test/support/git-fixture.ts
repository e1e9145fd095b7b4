import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/**
 * Builders for real repositories made with stock git in temp directories. Every git call runs in a
 * hermetic environment: no system or global config, fixed identities and dates, so commit ids are
 * reproducible and nothing on the host (hooks, signing defaults, GIT_DIR) leaks in.
 */

/** Fixed author and committer date: 2024-01-01T00:00:00Z in git's internal format. */
export const FIXED_DATE = '1704067200 +0000';

export interface GitCallOptions {
  /** Merged over the hermetic environment; use it to override GIT_AUTHOR_* or GIT_COMMITTER_*. */
  env?: Record<string, string>;
  /** Sets both GIT_AUTHOR_DATE and GIT_COMMITTER_DATE (any format git accepts). */
  date?: string;
  /** Extra `-c key=value` pairs placed before the subcommand. */
  config?: Record<string, string>;
}

export interface SigningKey {
  privatePath: string;
  publicPath: string;
  /** The whole public key line, e.g. `ssh-ed25519 AAAA... name`. */
  publicKey: string;
  principal: string;
}

export type SigningKeyType = 'ed25519' | 'ecdsa' | 'rsa';

/**
 * Built from scratch rather than from process.env on purpose: an inherited GIT_DIR, GIT_INDEX_FILE or
 * SSH_AUTH_SOCK (vitest run from a git hook, a developer's agent) would silently change what git does.
 */
function gitEnv(opts: GitCallOptions): Record<string, string> {
  const date = opts.date ?? FIXED_DATE;
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? tmpdir(),
    LANG: 'C',
    LC_ALL: 'C',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_TERMINAL_PROMPT: '0',
    GIT_AUTHOR_NAME: 'Fleet Author',
    GIT_AUTHOR_EMAIL: 'author@fleet.test',
    GIT_AUTHOR_DATE: date,
    GIT_COMMITTER_NAME: 'Fleet Committer',
    GIT_COMMITTER_EMAIL: 'committer@fleet.test',
    GIT_COMMITTER_DATE: date,
    ...opts.env,
  };
}

function gitArgv(args: readonly string[], opts: GitCallOptions): string[] {
  const config = Object.entries(opts.config ?? {}).flatMap(([key, value]) => ['-c', `${key}=${value}`]);
  return [...config, ...args];
}

function gitError(args: readonly string[], cwd: string, stderr: string, cause: unknown): Error {
  return new Error(`git ${args.join(' ')} failed in ${cwd}: ${stderr.trim()}`, { cause });
}

/**
 * Runs stock git synchronously and returns its trimmed stdout; throws with git's stderr in the message.
 * Blocks the event loop: never use it against a server running in the same process (use gitAsync).
 */
export function git(cwd: string, args: readonly string[], opts: GitCallOptions = {}): string {
  try {
    return execFileSync('git', gitArgv(args, opts), {
      cwd,
      env: gitEnv(opts),
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    }).trim();
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw gitError(args, cwd, stderr, error);
  }
}

/** Like git() but does not block the event loop, so it can talk to an in-process test server. */
export function gitAsync(cwd: string, args: readonly string[], opts: GitCallOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'git',
      gitArgv(args, opts),
      { cwd, env: gitEnv(opts), encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (error) reject(gitError(args, cwd, stderr, error));
        else resolve(stdout.trim());
      },
    );
  });
}

/**
 * Generates a passphrase-less key pair at `dir/name` and `dir/name.pub`; the principal is `name`.
 * Throws if the files already exist (ssh-keygen would otherwise ask before overwriting).
 */
export function makeSigningKey(dir: string, name: string, type: SigningKeyType = 'ed25519'): SigningKey {
  const privatePath = join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-C', name, '-f', privatePath], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const publicPath = `${privatePath}.pub`;
  return { privatePath, publicPath, publicKey: readFileSync(publicPath, 'utf8').trim(), principal: name };
}

/** Writes an ssh allowed_signers file trusting each key for the `git` namespace only. */
export function writeAllowedSigners(path: string, keys: readonly SigningKey[]): void {
  const lines = keys.map((key) => {
    const [keyType, blob] = key.publicKey.split(/\s+/);
    return `${key.principal} namespaces="git" ${keyType} ${blob}\n`;
  });
  writeFileSync(path, lines.join(''));
}

export interface CommitOptions {
  message: string;
  /** Signs the commit with `-S` using `gpg.format=ssh`. */
  signingKey?: SigningKey;
  date?: string;
}

/**
 * Writes (string) or deletes (null) each file relative to `dir`, stages everything and commits.
 * Returns the new commit id. Throws if the result would be an empty commit.
 */
export function commitFiles(
  dir: string,
  files: Record<string, string | null>,
  options: CommitOptions,
): string {
  for (const [path, content] of Object.entries(files)) {
    const target = join(dir, path);
    if (content === null) {
      rmSync(target, { force: true });
    } else {
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, content);
    }
  }
  git(dir, ['add', '-A']);
  const signing = options.signingKey;
  const opts: GitCallOptions = {
    ...(options.date === undefined ? {} : { date: options.date }),
    ...(signing ? { config: { 'gpg.format': 'ssh', 'user.signingkey': signing.publicPath } } : {}),
  };
  git(dir, ['commit', '-q', ...(signing ? ['-S'] : []), '-m', options.message], opts);
  return git(dir, ['rev-parse', 'HEAD']);
}

export interface FleetRepoOptions {
  files: Record<string, string>;
  signingKey?: SigningKey;
  branch?: string;
}

/** Creates a non-bare repository at `dir` (created if missing) with one commit of `files`; returns its id. */
export function initFleetRepo(dir: string, options: FleetRepoOptions): string {
  mkdirSync(dir, { recursive: true });
  git(dir, ['init', '-q', '-b', options.branch ?? 'main']);
  return commitFiles(dir, options.files, {
    message: 'Initial fleet',
    ...(options.signingKey ? { signingKey: options.signingKey } : {}),
  });
}

/**
 * Clones `srcDir` bare into `root/name.git` with receive-pack enabled and returns that path.
 * Uses --no-hardlinks so tamper tests can corrupt the bare copy without touching the source.
 */
export function publishBare(srcDir: string, root: string, name: string): string {
  const bare = join(root, `${name}.git`);
  git(root, ['clone', '-q', '--bare', '--no-hardlinks', srcDir, bare]);
  git(bare, ['config', 'http.receivepack', 'true']);
  return bare;
}

/** Pushes `refspec` from `srcDir` to the local repository `bareDir`. */
export function pushTo(srcDir: string, bareDir: string, refspec: string, force = false): void {
  git(srcDir, ['push', '-q', ...(force ? ['--force'] : []), bareDir, refspec]);
}
