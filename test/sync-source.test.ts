import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as fs from 'node:fs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { GitRepo } from '../src/git/git-repo.js';
import { createHttpClient } from '../src/git/http-client.js';
import { prepareRemote, redactUrl } from '../src/git/remote.js';
import { acceptRevision, initSourceRepo, syncSource, TIMESTAMP_REF } from '../src/git/sync-source.js';
import { withThinPackCapability } from '../src/git/thin-pack.js';
import { commitFiles, git, initFleetRepo, publishBare, pushTo } from './support/git-fixture.js';
import { startForwardProxy, withEnv } from './support/forward-proxy.js';
import { startGitServer, unusedUrl, type GitServer } from './support/git-http-server.js';

let work: string;
let source: string;
let second: string;
let current: GitServer;
let stale: GitServer;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'gitfleet-sync-'));
  source = join(work, 'source');
  initFleetRepo(source, { files: { 'fleet.yaml': 'kind: Fleet\n' } });
  const staleRoot = join(work, 'stale');
  mkdirSync(staleRoot);
  publishBare(source, staleRoot, 'fleet');
  second = commitFiles(
    source,
    { 'specs/a.yaml': 'kind: Spec\nid: a\ntarget: {}\napps: []\n' },
    { message: 'a' },
  );
  const currentRoot = join(work, 'current');
  mkdirSync(currentRoot);
  publishBare(source, currentRoot, 'fleet');
  current = await startGitServer(currentRoot);
  stale = await startGitServer(staleRoot);
});

afterAll(async () => {
  await current?.close();
  await stale?.close();
  rmSync(work, { recursive: true, force: true });
});

let device: GitRepo;
beforeEach(async () => {
  const gitdir = mkdtempSync(join(work, 'device-'));
  device = { fs, dir: gitdir, gitdir, cache: {} };
  await initSourceRepo(device);
  current.resetLog();
});

const http = createHttpClient({ limits: { connectMs: 1000, firstByteMs: 1000, totalMs: 3000 } });
const remote = (server: GitServer) => prepareRemote({ url: server.urlOf('fleet.git') });
/** The device syncs `main` from one server, without the timestamp ref. */
const syncFrom = (server: GitServer) =>
  syncSource({ repo: device, http, remotes: [remote(server)], branch: 'main', timestamp: false });

describe('syncSource', () => {
  it('fetches the tip, and a poll where nothing moved is one request that downloads no pack', async () => {
    const synced = await syncFrom(current);
    expect(synced).toMatchObject({ tip: second, moved: true, skipped: [] });
    await acceptRevision(device, 'main', synced.tip);
    git(device.gitdir, ['fsck', '--strict']);
    expect(git(device.gitdir, ['rev-parse', 'refs/heads/main'])).toBe(second);

    current.resetLog();
    const again = await syncFrom(current);
    expect(again).toMatchObject({ tip: second, moved: false });
    expect(current.requests).toHaveLength(1);
    expect(current.requests[0]).toMatchObject({ method: 'GET', query: 'service=git-upload-pack' });
  });

  it('tells the server what it has, so a one-commit change fetches a small pack', async () => {
    const start = await syncFrom(stale);
    await acceptRevision(device, 'main', start.tip);
    current.resetLog();
    const next = await syncFrom(current);
    expect(next).toMatchObject({ tip: second, moved: true });
    const pack = current.requests.find((r) => r.method === 'POST');
    expect(pack?.bytesSent).toBeLessThan(2000);
    git(device.gitdir, ['fsck', '--strict']);
  });

  it('skips a mirror that is down and uses the next one', async () => {
    const down = await unusedUrl();
    const skipped: string[] = [];
    const synced = await syncSource({
      repo: device,
      http,
      remotes: [prepareRemote({ url: `${down}/fleet.git` }), remote(current)],
      branch: 'main',
      timestamp: false,
      onSkip: (url, reason) => skipped.push(`${url} ${reason}`),
    });
    expect(synced).toMatchObject({ tip: second, remote: current.urlOf('fleet.git') });
    expect(skipped).toHaveLength(1);
    expect(skipped[0]).toContain('ECONNREFUSED');
  });

  it('skips a mirror serving an older tip than the accepted revision', async () => {
    await syncFrom(current);
    await acceptRevision(device, 'main', second);
    const synced = await syncSource({
      repo: device,
      http,
      remotes: [remote(stale), remote(current)],
      branch: 'main',
      timestamp: false,
    });
    expect(synced.tip).toBe(second);
    expect(synced.moved).toBe(false);
    expect(synced.skipped).toEqual([
      {
        remote: stale.urlOf('fleet.git'),
        reason: expect.stringContaining('older than the accepted') as string,
      },
    ]);
  });

  it('skips an older tip it has never seen, after fetching it', async () => {
    const otherGitdir = mkdtempSync(join(work, 'device-'));
    const other: GitRepo = { fs, dir: otherGitdir, gitdir: otherGitdir, cache: {} };
    await initSourceRepo(other);
    git(otherGitdir, ['fetch', '-q', join(work, 'current', 'fleet.git'), 'main:main']);
    git(otherGitdir, ['update-ref', 'refs/heads/main', second]);
    // The device has `second` but never saw `first` as a ref; the stale mirror serves `first`.
    await expect(
      syncSource({ repo: other, http, remotes: [remote(stale)], branch: 'main', timestamp: false }),
    ).rejects.toMatchObject({ code: 'source_unreachable', retryable: true });
  });

  for (const mode of ['garbage', 'truncate-pack', 'hang'] as const) {
    it(`skips a mirror answering ${mode} and reports source_unreachable when none is left`, async () => {
      await current.setMode(mode);
      try {
        const error = await syncFrom(current).catch((e: unknown) => e);
        expect(error).toMatchObject({ code: 'source_unreachable', retryable: true });
        expect(git(device.gitdir, ['for-each-ref'])).toBe('');
      } finally {
        await current.setMode('normal');
      }
      const synced = await syncFrom(current);
      expect(synced.tip).toBe(second);
      git(device.gitdir, ['fsck', '--strict']);
    });
  }

  it('skips a mirror without the branch', async () => {
    const error = await syncSource({
      repo: device,
      http,
      remotes: [remote(current)],
      branch: 'release',
      timestamp: false,
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'source_unreachable',
      message: expect.stringContaining('has no branch release') as string,
    });
  });

  it('fetches the timestamp ref when asked, and again only when it moved', async () => {
    const stamp = git(source, ['commit-tree', '-m', 'timestamp', git(source, ['rev-parse', 'HEAD^{tree}'])]);
    pushTo(source, join(work, 'current', 'fleet.git'), `${stamp}:${TIMESTAMP_REF}`);
    const synced = await syncSource({
      repo: device,
      http,
      remotes: [remote(current)],
      branch: 'main',
      timestamp: true,
    });
    expect(synced).toMatchObject({ tip: second, timestamp: stamp, moved: true });
    expect(git(device.gitdir, ['cat-file', '-t', stamp])).toBe('commit');
    await acceptRevision(device, 'main', synced.tip, synced.timestamp);
    current.resetLog();
    const again = await syncSource({
      repo: device,
      http,
      remotes: [remote(current)],
      branch: 'main',
      timestamp: true,
    });
    expect(again.moved).toBe(false);
    expect(current.requests).toHaveLength(1);
  });
});

describe('thin packs', () => {
  it('adds thin-pack to the first want line and fixes its pkt-line length', () => {
    const want = `want ${'a'.repeat(40)} multi_ack_detailed side-band-64k ofs-delta\n`;
    const pkt = (line: string) => `${(line.length + 4).toString(16).padStart(4, '0')}${line}`;
    const request = Buffer.from(`${pkt(want)}${pkt(`have ${'b'.repeat(40)}\n`)}0000`, 'latin1');
    const patched = withThinPackCapability(request).toString('latin1');
    expect(patched).toBe(`${pkt(want.replace('\n', ' thin-pack\n'))}${pkt(`have ${'b'.repeat(40)}\n`)}0000`);
    expect(withThinPackCapability(Buffer.from(patched, 'latin1')).toString('latin1')).toBe(patched);
    expect(withThinPackCapability(Buffer.from('0000', 'latin1')).toString('latin1')).toBe('0000');
  });

  it('completes the thin pack of an incremental fetch, so stock git reads the repository', async () => {
    const start = await syncFrom(stale);
    await acceptRevision(device, 'main', start.tip);
    const packs = () =>
      readdirSync(join(device.gitdir, 'objects', 'pack')).filter((f) => f.endsWith('.pack'));
    const before = packs();
    await syncSource({
      repo: device,
      http,
      remotes: [remote(current)],
      branch: 'main',
      timestamp: false,
      thinPacks: true,
    });
    // The fetched pack was completed into loose objects and removed.
    expect(packs()).toEqual(before);
    git(device.gitdir, ['fsck', '--strict', '--no-dangling']);
    expect(git(device.gitdir, ['cat-file', '-p', `${second}:specs/a.yaml`])).toContain('id: a');
    expect(git(device.gitdir, ['count-objects', '-v'])).toMatch(/^count: [1-9]/m);
  });
});

describe('proxies', () => {
  it('goes through HTTP_PROXY, and around it for hosts in NO_PROXY', async () => {
    const proxy = await startForwardProxy();
    try {
      await withEnv({ HTTP_PROXY: proxy.url, NO_PROXY: '' }, async () => {
        const synced = await syncSource({
          repo: device,
          http: createHttpClient(),
          remotes: [remote(current)],
          branch: 'main',
          timestamp: false,
        });
        expect(synced.tip).toBe(second);
      });
      expect(proxy.seen.length).toBeGreaterThanOrEqual(2);
      expect(proxy.seen[0]).toContain(`${current.urlOf('fleet.git')}/info/refs`);
      const before = proxy.seen.length;
      await withEnv({ HTTP_PROXY: proxy.url, NO_PROXY: '127.0.0.1' }, async () => {
        await syncSource({
          repo: device,
          http: createHttpClient(),
          remotes: [remote(current)],
          branch: 'main',
          timestamp: false,
        });
      });
      expect(proxy.seen.length).toBe(before);
    } finally {
      await proxy.close();
    }
  });
});

describe('remotes and credentials', () => {
  function captureServer(): Promise<{ url: string; headers: IncomingHttpHeaders[]; close: () => void }> {
    const headers: IncomingHttpHeaders[] = [];
    const server = createServer((req, res) => {
      headers.push(req.headers);
      res.writeHead(401).end();
    });
    return new Promise((resolve) =>
      server.listen(0, '127.0.0.1', () =>
        resolve({
          url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
          headers,
          close: () => server.close(),
        }),
      ),
    );
  }

  it('sends credentials as a header and never prints them', async () => {
    const capture = await captureServer();
    try {
      const withSecret = `${capture.url.replace('http://', 'http://deploy:s3cret-pw@')}/fleet.git`;
      const error = await syncSource({
        repo: device,
        http,
        remotes: [prepareRemote({ url: withSecret })],
        branch: 'main',
        timestamp: false,
      }).catch((e: unknown) => e as Error);
      expect(capture.headers[0]?.authorization).toBe(
        `Basic ${Buffer.from('deploy:s3cret-pw').toString('base64')}`,
      );
      expect(JSON.stringify(error)).not.toContain('s3cret');
      expect(String((error as Error).message)).not.toContain('s3cret');
      expect((error as Error).message).toContain(`${capture.url}/fleet.git`);
    } finally {
      capture.close();
    }
  });

  it('takes a bearer token from the config or the environment', () => {
    expect(prepareRemote({ url: 'https://git.example/fleet.git', token: 't0k' }).headers).toEqual({
      Authorization: 'Bearer t0k',
    });
    expect(
      prepareRemote({ url: 'https://git.example/fleet.git' }, { GITFLEET_GIT_TOKEN: 'env' }).headers,
    ).toEqual({
      Authorization: 'Bearer env',
    });
    expect(prepareRemote({ url: 'https://git.example/fleet.git' }).headers).toEqual({});
    expect(redactUrl('https://u:p@git.example/fleet.git')).toBe('https://git.example/fleet.git');
  });
});
