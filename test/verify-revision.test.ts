import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllowedSigners, type AllowedSigner } from '../src/git/allowed-signers.js';
import type { GitRepo } from '../src/git/git-repo.js';
import { createHttpClient } from '../src/git/http-client.js';
import { pullFleet, type PulledFleet } from '../src/git/pull-fleet.js';
import { createFleetMemo, readFleetAt, type FleetMemo } from '../src/git/read-fleet-at.js';
import { prepareRemote } from '../src/git/remote.js';
import { parseSshPrivateKey } from '../src/git/ssh-key.js';
import { acceptedRevision, acceptRevision, initSourceRepo, TIMESTAMP_REF } from '../src/git/sync-source.js';
import { formatTimestamp, signTimestamp } from '../src/git/timestamp.js';
import type { TrustPolicy } from '../src/git/verify-revision.js';
import { GitfleetError, type ErrorCode } from '../src/schema/gitfleet-error.js';
import { exampleFiles } from './support/example-files.js';
import {
  commitFiles,
  git,
  initFleetRepo,
  makeSigningKey,
  publishBare,
  pushTo,
  writeAllowedSigners,
  type SigningKey,
} from './support/git-fixture.js';
import { startGitServer, unusedUrl, type GitServer } from './support/git-http-server.js';

/**
 * The tamper suite for DESIGN.md §3 steps 1–3: histories built and signed by stock git and ssh-keygen,
 * served by stock http-backend, pulled by `pullFleet`. Every refusal also checks that nothing past
 * verification happened: the accepted revision did not move and not one fleet file was parsed. Tampered
 * tips carry `specs/broken.yaml`, so a read that slipped through would have shown as invalid_manifest.
 *
 * One source repository and one mirror serve the whole file; each test works on a branch of its own
 * (the device's accepted revision is per branch) and uses a fresh device, so tests do not depend on each
 * other. Tests that need their own timestamp ref get their own mirror.
 */

/** When every pass "starts": a day after the commits' fixed date (2024-01-01). */
const NOW = new Date('2024-01-02T00:00:00Z');
const LATER = new Date('2024-01-03T00:00:00Z');

const spec = (id: string) => ({ [`specs/${id}.yaml`]: `kind: Spec\nid: ${id}\ntarget: {}\napps: []\n` });
const VALID = { 'fleet.yaml': 'kind: Fleet\n', ...spec('a') };
const ASKS_FOR_TIMESTAMP = { 'fleet.yaml': 'kind: Fleet\ntrust:\n  timestamp: true\n' };
/** Unparseable YAML (an unclosed flow sequence): reading a tip that has it yields invalid_manifest. */
const BROKEN = { 'specs/broken.yaml': 'kind: Spec\nid: [unclosed\n' };

let work: string;
let root: string;
let server: GitServer;
let faulty: GitServer;
let release: SigningKey;
let mallory: SigningKey;
let signersPath: string;
let allowedSigners: AllowedSigner[];
/** The source working tree; `base` is its first commit (VALID, signed by `release`). */
let source: string;
let base: string;
let mirror: string;
let stale: string;
let broken: string;
/** A device repository holding `base`'s objects and no refs, copied for each test. */
let template: string;
let counter = 0;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'gitfleet-verify-'));
  root = join(work, 'served');
  const faultyRoot = join(work, 'faulty');
  mkdirSync(root);
  mkdirSync(faultyRoot);
  const keys = join(work, 'keys');
  mkdirSync(keys);
  release = makeSigningKey(keys, 'release');
  mallory = makeSigningKey(keys, 'mallory');
  signersPath = join(keys, 'allowed_signers');
  writeAllowedSigners(signersPath, [release]);
  allowedSigners = parseAllowedSigners(readFileSync(signersPath, 'utf8'), signersPath);

  source = join(work, 'source');
  base = initFleetRepo(source, { files: VALID, signingKey: release });
  mirror = publishBare(source, root, 'fleet');
  stale = publishBare(source, root, 'stale');
  broken = publishBare(source, faultyRoot, 'fleet');
  template = join(work, 'template');
  await initSourceRepo({ fs, dir: template, gitdir: template, cache: {} });
  git(template, ['fetch', '-q', mirror, 'main']);

  server = await startGitServer(root);
  faulty = await startGitServer(faultyRoot);
});

afterAll(async () => {
  await server?.close();
  await faulty?.close();
  rmSync(work, { recursive: true, force: true });
});

const http = createHttpClient({ limits: { connectMs: 500, firstByteMs: 500, totalMs: 2000 } });

/** One test's branch of the source, and the mirror that serves it. */
interface Case {
  branch: string;
  bare: string;
  url: string;
}

/** Checks out a new branch at `base` in the source (dropping any leftovers) for the shared mirror. */
function newCase(): Case {
  const branch = `case-${++counter}`;
  git(source, ['checkout', '-q', '-f', '-B', branch, base]);
  return { branch, bare: mirror, url: server.urlOf('fleet.git') };
}

/**
 * Moves the case to a mirror of its own, for its own timestamp ref: a bare clone of the source that
 * borrows its objects (`--shared`), serving every branch of it as it is now.
 */
function ownMirror(c: Case): void {
  const name = `own-${c.branch}`;
  c.bare = join(root, `${name}.git`);
  git(root, ['clone', '-q', '--bare', '--shared', source, c.bare]);
  c.url = server.urlOf(`${name}.git`);
}

/** Commits on the case's branch of the source, without publishing it. */
function commit(c: Case, files: Record<string, string | null>, signingKey?: SigningKey): string {
  return commitFiles(source, files, {
    message: `${c.branch}: ${signingKey ? `signed by ${signingKey.principal}` : 'unsigned'}`,
    ...(signingKey ? { signingKey } : {}),
  });
}

/** Commits and publishes: the mirror's branch is force-pushed to the new commit. */
function publish(c: Case, files: Record<string, string | null>, signingKey?: SigningKey): string {
  const id = commit(c, files, signingKey);
  forcePush(c, id);
  return id;
}

/** Points the case's branch on a mirror (its own by default) at `id`, with a forced push. */
function forcePush(c: Case, id: string, bare = c.bare): void {
  pushTo(source, bare, `${id}:refs/heads/${c.branch}`, true);
}

async function newDevice(): Promise<GitRepo> {
  const gitdir = mkdtempSync(join(work, 'device-'));
  const device: GitRepo = { fs, dir: gitdir, gitdir, cache: {} };
  await initSourceRepo(device);
  return device;
}

/**
 * A device that accepted `accepted` (by default `base`) on the case's branch in an earlier pass: the
 * commit's objects (fetched by stock git) and the branch at it.
 */
async function deviceAt(c: Case, accepted = base): Promise<GitRepo> {
  const gitdir = mkdtempSync(join(work, 'device-'));
  cpSync(template, gitdir, { recursive: true });
  if (accepted !== base) git(gitdir, ['fetch', '-q', source, accepted]);
  const device: GitRepo = { fs, dir: gitdir, gitdir, cache: {} };
  await acceptRevision(device, c.branch, accepted);
  return device;
}

interface PullOptions {
  /** Mirrors in order; the case's own mirror by default. */
  urls?: readonly string[];
  trust?: Partial<TrustPolicy>;
  memo?: FleetMemo;
}

function pull(device: GitRepo, c: Case, options: PullOptions = {}): Promise<PulledFleet> {
  return pullFleet({
    repo: device,
    http,
    remotes: (options.urls ?? [c.url]).map((url) => prepareRemote({ url })),
    branch: c.branch,
    trust: {
      allowedSigners,
      policy: 'head',
      allowRollback: false,
      requireTimestamp: false,
      now: NOW,
      ...options.trust,
    },
    memo: options.memo ?? createFleetMemo(),
  });
}

/**
 * Pulls and expects a refusal with `code` whose message contains every one of `parts`; then checks that
 * nothing past verification happened: the accepted revision is where it was and no file was parsed.
 */
async function expectRefused(
  device: GitRepo,
  c: Case,
  options: Omit<PullOptions, 'memo'>,
  code: ErrorCode,
  ...parts: string[]
): Promise<GitfleetError> {
  const before = await acceptedRevision(device, c.branch);
  const memo = createFleetMemo();
  const error = await pull(device, c, { ...options, memo }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(GitfleetError);
  const refusal = error as GitfleetError;
  expect(refusal.code).toBe(code);
  for (const part of parts) expect(refusal.message).toContain(part);
  expect(await acceptedRevision(device, c.branch)).toBe(before);
  expect(memo.files.size).toBe(0);
  return refusal;
}

/** The refused tip is local and would have failed to parse: the refusal is what kept it from being read. */
async function expectBrokenAt(device: GitRepo, tip: string): Promise<void> {
  const { result } = await readFleetAt(device, tip, createFleetMemo());
  expect(result.ok).toBe(false);
  const errors = result.ok ? [] : result.errors;
  expect(errors.map((e) => `${e.code} ${e.location?.file}`)).toContain(
    `invalid_manifest specs/broken.yaml@${tip.slice(0, 7)}`,
  );
}

/**
 * Stock `git verify-commit` against the same allowed_signers file: true when git trusts the commit, false
 * when it refuses it for its signature. Any other failure (no such commit, a broken config) throws.
 */
function stockGitTrusts(gitdir: string, commit: string): boolean {
  git(gitdir, ['cat-file', '-e', `${commit}^{commit}`]);
  const result = spawnSync(
    'git',
    ['-c', `gpg.ssh.allowedSignersFile=${signersPath}`, '-C', gitdir, 'verify-commit', commit],
    { encoding: 'utf8' },
  );
  if (result.status === 0) return true;
  expect(result.stderr).toMatch(/signature|No principal matched|not signed/i);
  return false;
}

describe('signatures', () => {
  it('refuses an unsigned tip as untrusted_revision naming the commit', async () => {
    const c = newCase();
    const device = await deviceAt(c);
    const tip = publish(c, BROKEN);
    await expectRefused(device, c, {}, 'untrusted_revision', `commit ${tip}`, 'not signed');
    await expectBrokenAt(device, tip);
  });

  it('refuses a tip signed by a key that allowed_signers does not trust', async () => {
    const c = newCase();
    const device = await deviceAt(c);
    const tip = publish(c, BROKEN, mallory);
    await expectRefused(device, c, {}, 'untrusted_revision', `commit ${tip}`, 'does not trust');
    await expectBrokenAt(device, tip);
    expect(stockGitTrusts(device.gitdir, tip)).toBe(false);
  });

  /** A signed commit's raw object with one field changed and its gpgsig header kept, written by stock git. */
  function forge(c: Case, signed: string, edit: (raw: string) => string): string {
    const raw = `${git(source, ['cat-file', 'commit', signed])}\n`;
    const forged = edit(raw);
    expect(forged).not.toBe(raw);
    expect(forged).toContain('\ngpgsig -----BEGIN SSH SIGNATURE-----\n');
    const file = join(work, `forged-${c.branch}`);
    writeFileSync(file, forged);
    const id = git(source, ['hash-object', '-t', 'commit', '-w', file]);
    forcePush(c, id);
    return id;
  }

  it('refuses a valid signature over another tree (a signed commit pointed at a tampered tree)', async () => {
    const c = newCase();
    const device = await deviceAt(c);
    const signed = commit(c, spec('b'), release);
    expect(stockGitTrusts(source, signed)).toBe(true);
    for (const [path, content] of Object.entries(BROKEN)) writeFileSync(join(source, path), content);
    git(source, ['add', '-A']);
    const tamperedTree = git(source, ['write-tree']);
    git(source, ['reset', '-q', '--hard']);
    const signedTree = git(source, ['rev-parse', `${signed}^{tree}`]);
    const tip = forge(c, signed, (raw) => raw.replace(`tree ${signedTree}\n`, `tree ${tamperedTree}\n`));

    await expectRefused(device, c, {}, 'untrusted_revision', `commit ${tip}`, 'does not match');
    await expectBrokenAt(device, tip);
    expect(stockGitTrusts(device.gitdir, tip)).toBe(false);
  });

  it('refuses a valid signature over another message', async () => {
    const c = newCase();
    const device = await deviceAt(c);
    const signed = commit(c, spec('b'), release);
    const tip = forge(c, signed, (raw) => raw.replace(/\n\n[^]*$/, '\n\nApproved by nobody\n'));

    await expectRefused(device, c, {}, 'untrusted_revision', `commit ${tip}`, 'does not match');
    expect(stockGitTrusts(device.gitdir, tip)).toBe(false);
  });
});

describe('anti-rollback', () => {
  /** Signed `base` (A) then signed B, and a device that accepted B. */
  async function acceptedChild() {
    const c = newCase();
    const b = commit(c, spec('b'), release);
    return { c, b, device: await deviceAt(c, b) };
  }

  /** A signed sibling of B (a child of A) with a broken file, force-pushed to the mirror. */
  function forcePushSibling(c: Case): string {
    git(source, ['checkout', '-q', '-B', `${c.branch}-diverged`, base]);
    return publish(c, BROKEN, release);
  }

  it('skips a mirror force-pushed back to an older signed commit: source_unreachable as the only mirror', async () => {
    const { c, b, device } = await acceptedChild();
    forcePush(c, base);
    const error = await expectRefused(device, c, {}, 'source_unreachable', 'older than the accepted');
    expect(error.message).toContain(b.slice(0, 12));
    expect(error.retryable).toBe(true);
  });

  it('refuses a force-pushed diverged signed commit as rollback_refused', async () => {
    const { c, b, device } = await acceptedChild();
    const sibling = forcePushSibling(c);
    await expectRefused(device, c, {}, 'rollback_refused', `commit ${sibling}`, `accepted ${b}`);
    await expectBrokenAt(device, sibling);
  });

  it('accepts the diverged tip with allowRollback, and only then reads it', async () => {
    const { c, device } = await acceptedChild();
    const sibling = forcePushSibling(c);
    const pulled = await pull(device, c, { trust: { allowRollback: true } });
    expect(pulled.verified.commit).toBe(sibling);
    expect(await acceptedRevision(device, c.branch)).toBe(sibling);
    // The override skips the descent check, nothing else: the broken file is read and shows.
    expect(pulled.fleet.commit).toBe(sibling);
    expect(pulled.fleet.result.ok).toBe(false);
  });
});

describe("policy 'all'", () => {
  it('refuses an unsigned commit in the middle, naming it; policy head accepts the same history', async () => {
    const c = newCase();
    const device = await deviceAt(c);
    const middle = commit(c, spec('m'));
    const tip = publish(c, spec('t'), release);

    await expectRefused(
      device,
      c,
      { trust: { policy: 'all' } },
      'untrusted_revision',
      `commit ${middle}`,
      'not signed',
    );

    const pulled = await pull(device, c, { trust: { policy: 'head' } });
    expect(pulled.verified.commit).toBe(tip);
    expect(pulled.fleet.result.ok).toBe(true);
    expect(await acceptedRevision(device, c.branch)).toBe(tip);
  });

  /**
   * Signed A (`base`), unsigned U, signed B, and a device that accepted B (as policy `head` would); then a
   * side branch with S forking from U, a signed C on the case's branch, and a signed merge of S into C.
   */
  async function mergeOverOldHistory(side: { signed: boolean }) {
    const c = newCase();
    const old = commit(c, spec('u'));
    const device = await deviceAt(c, commit(c, spec('b'), release));

    git(source, ['checkout', '-q', '-B', `${c.branch}-side`, old]);
    const s = commit(c, spec('s'), side.signed ? release : undefined);
    git(source, ['checkout', '-q', c.branch]);
    commit(c, spec('c'), release);
    git(source, ['merge', '-q', '--no-ff', '-S', '-m', `${c.branch}: merge side`, `${c.branch}-side`], {
      config: { 'gpg.format': 'ssh', 'user.signingkey': release.publicPath },
    });
    const merge = git(source, ['rev-parse', 'HEAD']);
    forcePush(c, merge);
    return { c, device, old, s, merge };
  }

  it('accepts a merge whose side branch forks from unsigned commits the accepted revision covers', async () => {
    const { c, device, old, merge } = await mergeOverOldHistory({ signed: true });
    expect(git(source, ['rev-list', `${merge}^2`]).split('\n')).toContain(old);
    const pulled = await pull(device, c, { trust: { policy: 'all' } });
    expect(pulled.verified.commit).toBe(merge);
    expect(await acceptedRevision(device, c.branch)).toBe(merge);
    expect(pulled.fleet.result.ok).toBe(true);
  });

  it('refuses a merge that brings in a new unsigned commit from its side branch', async () => {
    const { c, device, s } = await mergeOverOldHistory({ signed: false });
    await expectRefused(
      device,
      c,
      { trust: { policy: 'all' } },
      'untrusted_revision',
      `commit ${s}`,
      'not signed',
    );
  });
});

describe('freshness', () => {
  const signer = { name: 'Fleet Timestamper', email: 'timestamp@fleet.test' };

  /** A case on a mirror of its own whose tip's fleet.yaml asks for a timestamp. */
  function timestampedCase(): { c: Case; tip: string } {
    const c = newCase();
    const tip = commit(c, ASKS_FOR_TIMESTAMP, release);
    ownMirror(c);
    return { c, tip };
  }

  /** Signs a timestamp in the source with gitfleet's own signer and pushes it to the mirror with stock git. */
  async function stamp(c: Case, vouchesFor: string, expires: Date, key = release): Promise<string> {
    const repo: GitRepo = { fs, dir: source, gitdir: join(source, '.git'), cache: {} };
    const privateKey = parseSshPrivateKey(readFileSync(key.privatePath, 'utf8'));
    const id = await signTimestamp(repo, { source: vouchesFor, expires, now: NOW, key: privateKey, signer });
    pushTo(source, c.bare, `${id}:${TIMESTAMP_REF}`, true);
    return id;
  }

  it('refuses a tip without a timestamp when fleet.yaml asks for one', async () => {
    const { c, tip } = timestampedCase();
    const device = await deviceAt(c);
    await expectRefused(
      device,
      c,
      {},
      'stale_revision',
      `commit ${tip}`,
      `no signed timestamp on ${TIMESTAMP_REF}`,
    );
  });

  it('refuses an expired timestamp', async () => {
    const { c, tip } = timestampedCase();
    await stamp(c, tip, new Date(NOW.getTime() - 1000));
    const device = await deviceAt(c);
    await expectRefused(device, c, {}, 'stale_revision', `commit ${tip}`, 'expired');
  });

  it('refuses a timestamp that names another commit', async () => {
    const { c, tip } = timestampedCase();
    const timestamp = await stamp(c, base, LATER);
    const device = await deviceAt(c);
    await expectRefused(device, c, {}, 'stale_revision', `commit ${tip}`, `${timestamp} names ${base}`);
  });

  it('refuses a timestamp signed by a key that allowed_signers does not trust', async () => {
    const { c, tip } = timestampedCase();
    const timestamp = await stamp(c, tip, LATER, mallory);
    const device = await deviceAt(c);
    await expectRefused(device, c, {}, 'stale_revision', `timestamp ${timestamp}`, 'does not trust');
  });

  it('refuses an unsigned timestamp', async () => {
    const { c, tip } = timestampedCase();
    const message = join(work, `timestamp-message-${c.branch}`);
    writeFileSync(message, formatTimestamp({ source: tip, expires: LATER }));
    const emptyTree = git(source, ['hash-object', '-t', 'tree', '-w', '/dev/null']);
    const timestamp = git(source, ['commit-tree', emptyTree, '-F', message]);
    pushTo(source, c.bare, `${timestamp}:${TIMESTAMP_REF}`, true);
    const device = await deviceAt(c);
    await expectRefused(device, c, {}, 'stale_revision', `timestamp ${timestamp}`, 'not signed');
  });

  it('treats a timestamp ref that is not a commit as no timestamp: usable when none is needed, stale when one is', async () => {
    const c = newCase();
    const tip = commit(c, spec('no-timestamp-needed'), release);
    ownMirror(c);
    const blob = join(work, `not-a-commit-${c.branch}`);
    writeFileSync(blob, 'not a timestamp\n');
    const oid = git(c.bare, ['hash-object', '-w', blob]);
    git(c.bare, ['update-ref', TIMESTAMP_REF, oid]);
    const pulled = await pull(await deviceAt(c), c);
    expect(pulled.verified).toMatchObject({ commit: tip, timestamp: undefined });
    await expectRefused(
      await deviceAt(c),
      c,
      { trust: { requireTimestamp: true } },
      'stale_revision',
      `no signed timestamp on ${TIMESTAMP_REF}`,
    );
  });

  it('accepts a valid timestamp naming the tip, and keeps it with the accepted revision', async () => {
    const { c, tip } = timestampedCase();
    const timestamp = await stamp(c, tip, LATER);
    const device = await deviceAt(c);
    const pulled = await pull(device, c);
    expect(pulled.verified.commit).toBe(tip);
    expect(pulled.verified.timestamp?.source).toBe(tip);
    expect(pulled.verified.timestamp?.commit).toBe(timestamp);
    expect(pulled.verified.timestamp?.expires).toEqual(LATER);
    expect(pulled.fleet.result.ok).toBe(true);
    expect(git(device.gitdir, ['rev-parse', TIMESTAMP_REF])).toBe(timestamp);
    expect(stockGitTrusts(device.gitdir, timestamp)).toBe(true);
  });

  it('requires a timestamp when the trust policy does, even if fleet.yaml does not ask', async () => {
    const c = newCase();
    ownMirror(c);
    const device = await deviceAt(c);
    await expectRefused(device, c, { trust: { requireTimestamp: true } }, 'stale_revision', TIMESTAMP_REF);
    await stamp(c, base, LATER);
    const pulled = await pull(device, c, { trust: { requireTimestamp: true } });
    expect(pulled.verified.timestamp?.source).toBe(base);
  });

  it('fails a poll where nothing moved once the timestamp has expired, in one request', async () => {
    const { c, tip } = timestampedCase();
    await stamp(c, tip, LATER);
    const device = await deviceAt(c);
    expect((await pull(device, c)).sync.moved).toBe(true);

    server.resetLog();
    const afterExpiry = new Date(LATER.getTime() + 1000);
    await expectRefused(
      device,
      c,
      { trust: { now: afterExpiry } },
      'stale_revision',
      `commit ${tip}`,
      'expired',
    );
    expect(server.requests).toHaveLength(1);
    expect(await acceptedRevision(device, c.branch)).toBe(tip);
  });
});

describe('mirrors', () => {
  it('skips a mirror that is down and takes the tip from the next one', async () => {
    const c = newCase();
    const tip = publish(c, spec('b'), release);
    const down = `${await unusedUrl()}/fleet.git`;
    const device = await deviceAt(c);
    const pulled = await pull(device, c, { urls: [down, c.url] });
    expect(pulled.verified.commit).toBe(tip);
    expect(pulled.sync.remote).toBe(c.url);
    expect(pulled.sync.skipped.map((s) => s.remote)).toEqual([down]);
    expect(await acceptedRevision(device, c.branch)).toBe(tip);
  });

  it('skips a mirror serving an older tip and takes the right one from the next', async () => {
    const c = newCase();
    const staleUrl = server.urlOf('stale.git');
    forcePush(c, base, stale);
    const device = await deviceAt(c, commit(c, spec('b'), release));
    const tip = publish(c, spec('c'), release);

    const pulled = await pull(device, c, { urls: [staleUrl, c.url] });
    expect(pulled.verified.commit).toBe(tip);
    expect(pulled.sync.skipped).toHaveLength(1);
    expect(pulled.sync.skipped[0]?.remote).toBe(staleUrl);
    expect(pulled.sync.skipped[0]?.reason).toContain('older');
    expect(await acceptedRevision(device, c.branch)).toBe(tip);
  });

  for (const mode of ['garbage', 'truncate-pack', 'hang'] as const) {
    it(`reports source_unreachable when the only mirror answers ${mode}, and recovers once it is normal`, async () => {
      const c = newCase();
      c.bare = broken;
      c.url = faulty.urlOf('fleet.git');
      const device = await deviceAt(c);
      const tip = publish(c, spec('b'), release);

      await faulty.setMode(mode);
      try {
        await expectRefused(device, c, {}, 'source_unreachable', c.url);
        expect(await acceptedRevision(device, c.branch)).toBe(base);
      } finally {
        await faulty.setMode('normal');
      }
      const pulled = await pull(device, c);
      expect(pulled.verified.commit).toBe(tip);
      expect(pulled.fleet.result.ok).toBe(true);
      git(device.gitdir, ['fsck', '--strict']);
    });
  }
});

describe('happy path', () => {
  it('accepts a signed tip, reads the fleet, agrees with stock git, and a second poll is one request', async () => {
    const c = newCase();
    const tip = publish(c, { ...exampleFiles(), 'specs/a.yaml': null }, release);
    const device = await newDevice();
    const memo = createFleetMemo();
    const pulled = await pull(device, c, { memo });
    expect(pulled.sync).toMatchObject({ tip, moved: true, skipped: [] });
    expect(pulled.verified.signer.principals).toEqual(['release']);
    expect(pulled.fleet.result.ok).toBe(true);
    expect(await acceptedRevision(device, c.branch)).toBe(tip);
    expect(stockGitTrusts(device.gitdir, tip)).toBe(true);
    git(device.gitdir, ['fsck', '--strict']);

    const parsed = new Map(memo.files);
    expect(parsed.size).toBeGreaterThan(1);
    server.resetLog();
    const again = await pull(device, c, { memo });
    expect(again.sync.moved).toBe(false);
    expect(again.fleet.result.ok).toBe(true);
    expect(server.requests).toHaveLength(1);
    expect(server.requests[0]).toMatchObject({ method: 'GET', query: 'service=git-upload-pack' });
    // The very objects of the first read, not equal copies: nothing was parsed again.
    expect([...memo.files.keys()]).toEqual([...parsed.keys()]);
    for (const [key, part] of memo.files) expect(part).toBe(parsed.get(key));
  });
});
