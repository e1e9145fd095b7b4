import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  commitFiles,
  git,
  gitAsync,
  initFleetRepo,
  makeSigningKey,
  publishBare,
  writeAllowedSigners,
  type SigningKey,
} from './support/git-fixture.js';
import { startGitServer, unusedUrl, type GitServer } from './support/git-http-server.js';

/**
 * The test support itself, proven against stock git: a real `git http-backend` behind the in-process
 * server, signed fixture repositories, the request log and every fault mode. Git talks to the
 * in-process server, so those calls must be gitAsync (git() would block the event loop serving it).
 */

let work: string;
let root: string;
let key: SigningKey;
let allowedSigners: string;
let signedHead: string;
let server: GitServer;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'gitfleet-http-'));
  root = join(work, 'served');
  mkdirSync(root);
  key = makeSigningKey(work, 'release-signer');
  allowedSigners = join(work, 'allowed_signers');
  writeAllowedSigners(allowedSigners, [key]);
  const source = join(work, 'source');
  signedHead = initFleetRepo(source, { files: { 'fleet.yaml': 'packets: []\n' }, signingKey: key });
  publishBare(source, root, 'fleet');
  publishBare(source, root, 'push-target');
  server = await startGitServer(root);
});

afterAll(async () => {
  await server?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

async function withMode<T>(mode: Parameters<GitServer['setMode']>[0], run: () => Promise<T>): Promise<T> {
  await server.setMode(mode);
  try {
    return await run();
  } finally {
    await server.setMode('normal');
  }
}

function fetchBody(url: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve(Buffer.concat(chunks)));
      res.on('error', reject);
    }).on('error', reject);
  });
}

describe('git http-backend server', () => {
  it('serves the signed head to git ls-remote in exactly one request (protocol v1)', async () => {
    server.resetLog();
    const out = await gitAsync(work, ['-c', 'protocol.version=1', 'ls-remote', server.urlOf('fleet.git')]);
    expect(out).toContain(`${signedHead}\trefs/heads/main`);
    expect(server.requests).toHaveLength(1);
    expect(server.requests[0]).toMatchObject({
      method: 'GET',
      path: '/fleet.git/info/refs',
      query: 'service=git-upload-pack',
    });
    expect(server.requests[0]!.bytesSent).toBeGreaterThan(0);
  });

  it('needs two requests for ls-remote under protocol v2 (Git-Protocol header reaches the backend)', async () => {
    server.resetLog();
    await gitAsync(work, ['-c', 'protocol.version=2', 'ls-remote', server.urlOf('fleet.git')]);
    expect(server.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      'GET /fleet.git/info/refs',
      'POST /fleet.git/git-upload-pack',
    ]);
  });

  it('logs exactly the body bytes a client receives', async () => {
    server.resetLog();
    const body = await fetchBody(`${server.urlOf('fleet.git')}/info/refs?service=git-upload-pack`);
    expect(body.toString('latin1')).toMatch(/^001e# service=git-upload-pack\n/);
    expect(server.requests).toHaveLength(1);
    expect(server.requests[0]!.bytesSent).toBe(body.length);
  });

  it('clones the signed commit, and verify-commit accepts it only with the allowed signer', async () => {
    server.resetLog();
    const clone = join(work, 'clone-verify');
    await gitAsync(work, ['clone', '-q', server.urlOf('fleet.git'), clone]);
    expect(git(clone, ['rev-parse', 'HEAD'])).toBe(signedHead);
    expect(server.requests.some((r) => r.method === 'POST' && r.path === '/fleet.git/git-upload-pack')).toBe(
      true,
    );
    expect(server.requests.reduce((sum, r) => sum + r.bytesSent, 0)).toBeGreaterThan(0);

    const trusted = { config: { 'gpg.ssh.allowedSignersFile': allowedSigners } };
    expect(() => git(clone, ['verify-commit', signedHead], trusted)).not.toThrow();

    const stranger = makeSigningKey(work, 'stranger');
    const strangersOnly = join(work, 'allowed_signers.stranger');
    writeAllowedSigners(strangersOnly, [stranger]);
    const untrusted = { config: { 'gpg.ssh.allowedSignersFile': strangersOnly } };
    expect(() => git(clone, ['verify-commit', signedHead], untrusted)).toThrow(/verify-commit/);
  });

  it('accepts a push over HTTP (receive-pack enabled) and the pushed repository is fsck-clean', async () => {
    const clone = join(work, 'clone-push');
    await gitAsync(work, ['clone', '-q', server.urlOf('push-target.git'), clone]);
    const pushed = commitFiles(clone, { 'fleet.yaml': null, 'specs/a.yaml': 'id: a\n' }, { message: 'Move' });
    server.resetLog();
    await gitAsync(clone, ['push', '-q', 'origin', 'main']);
    expect(server.requests.map((r) => `${r.method} ${r.path}`)).toContain(
      'POST /push-target.git/git-receive-pack',
    );
    const bare = join(root, 'push-target.git');
    expect(git(bare, ['rev-parse', 'refs/heads/main'])).toBe(pushed);
    expect(git(bare, ['ls-tree', '-r', '--name-only', 'main'])).toBe('specs/a.yaml');
    expect(() => git(bare, ['fsck', '--strict', '--no-progress'])).not.toThrow();
  });

  it('makes git ls-remote fail in garbage mode', async () => {
    await withMode('garbage', async () => {
      await expect(gitAsync(work, ['ls-remote', server.urlOf('fleet.git')])).rejects.toThrow(
        /protocol error: bad line length character/,
      );
    });
    await expect(gitAsync(work, ['ls-remote', server.urlOf('fleet.git')])).resolves.toContain(signedHead);
  });

  it.each(['1', '2'])(
    'makes git clone fail in truncate-pack mode, refs still advertised (protocol v%s)',
    async (v) => {
      await withMode('truncate-pack', async () => {
        const protocol = ['-c', `protocol.version=${v}`];
        const refs = await gitAsync(work, [...protocol, 'ls-remote', server.urlOf('fleet.git')]);
        expect(refs).toContain(signedHead);
        const clone = join(work, `clone-truncated-v${v}`);
        const cloning = gitAsync(work, [...protocol, 'clone', '-q', server.urlOf('fleet.git'), clone]);
        await expect(cloning).rejects.toThrow(/clone/);
        await cloning.catch((e: Error) => console.log(e.message));
      });
    },
  );

  it('refuses connections in down mode and serves again on the same url afterwards', async () => {
    const url = server.url;
    await withMode('down', async () => {
      await expect(gitAsync(work, ['ls-remote', server.urlOf('fleet.git')])).rejects.toThrow(
        /Failed to connect|Connection refused/,
      );
    });
    expect(server.url).toBe(url);
    await expect(gitAsync(work, ['ls-remote', server.urlOf('fleet.git')])).resolves.toContain(signedHead);
  });

  it('gives a url nothing listens on', async () => {
    const url = await unusedUrl();
    await expect(gitAsync(work, ['ls-remote', `${url}/fleet.git`])).rejects.toThrow(/Failed to connect/);
  });
});

describe('hang mode', () => {
  it('lets a client time out and still closes promptly with a request in flight', async () => {
    const hanging = await startGitServer(root, { mode: 'hang' });
    try {
      const refsUrl = `${hanging.urlOf('fleet.git')}/info/refs?service=git-upload-pack`;
      const timedOut = await new Promise<string>((resolve) => {
        const req = get(refsUrl, { timeout: 500 }, () => resolve('answered'));
        req.on('timeout', () => {
          req.destroy();
          resolve('timeout');
        });
        req.on('error', () => undefined); // destroy() after a timeout reports "socket hang up"
      });
      expect(timedOut).toBe('timeout');

      const inFlight = new Promise<string>((resolve) => {
        get(refsUrl, { agent: false }, () => resolve('answered')).on('error', (e) => resolve(e.message));
      });
      await expect.poll(() => hanging.requests.length).toBe(2);
      const deadline = new Promise<string>((resolve) =>
        setTimeout(() => resolve('still open'), 2_000).unref(),
      );
      await expect(Promise.race([hanging.close().then(() => 'closed'), deadline])).resolves.toBe('closed');
      await expect(inFlight).resolves.toBe('socket hang up');
    } finally {
      await hanging.close(); // idempotent; only does work if an assertion above failed
    }
  });
});
