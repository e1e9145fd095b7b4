import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request, type IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveArtifacts } from '../src/agent/serve-artifacts.js';
import type { LoopbackServer } from '../src/git/listen-on-loopback.js';

/** The static artifact server the demo uses, against real requests on loopback. */

let work: string;
let server: LoopbackServer;
const body = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** A raw request: `path` goes on the request line exactly as given (no URL normalisation on our side). */
function fetchRaw(path: string, options: { method?: string; range?: string } = {}): Promise<Answer> {
  const url = new URL(server.url);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        path,
        method: options.method ?? 'GET',
        headers: options.range ? { range: options.range } : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'gitfleet-serve-artifacts-'));
  const root = join(work, 'root');
  mkdirSync(join(root, 'logger', '1.2.0'), { recursive: true });
  writeFileSync(join(root, 'logger', '1.2.0', 'logger.tar.gz'), body);
  writeFileSync(join(work, 'secret'), 'outside the root\n');
  mkdirSync(join(work, 'outside'));
  writeFileSync(join(work, 'outside', 'file'), 'outside too\n');
  symlinkSync(join(work, 'secret'), join(root, 'escape'));
  symlinkSync('../outside', join(root, 'escape-dir'));
  symlinkSync('logger/1.2.0/logger.tar.gz', join(root, 'alias.tar.gz'));
  server = await serveArtifacts(root);
});

afterAll(async () => {
  await server?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('serveArtifacts', () => {
  it('serves a file below the root with its length', async () => {
    const answer = await fetchRaw('/logger/1.2.0/logger.tar.gz');
    expect(answer.status).toBe(200);
    expect(answer.headers['content-length']).toBe('1000');
    expect(answer.headers['accept-ranges']).toBe('bytes');
    expect(answer.body.equals(body)).toBe(true);
  });

  it('answers HEAD with the headers only', async () => {
    const answer = await fetchRaw('/logger/1.2.0/logger.tar.gz', { method: 'HEAD' });
    expect(answer.status).toBe(200);
    expect(answer.headers['content-length']).toBe('1000');
    expect(answer.body).toHaveLength(0);
  });

  it('resumes with Range: bytes=N- (206 and Content-Range)', async () => {
    const answer = await fetchRaw('/logger/1.2.0/logger.tar.gz', { range: 'bytes=600-' });
    expect(answer.status).toBe(206);
    expect(answer.headers['content-range']).toBe('bytes 600-999/1000');
    expect(answer.headers['content-length']).toBe('400');
    expect(answer.body.equals(body.subarray(600))).toBe(true);
  });

  it('serves bytes=N-M clamped to the file', async () => {
    const answer = await fetchRaw('/logger/1.2.0/logger.tar.gz', { range: 'bytes=990-5000' });
    expect(answer.status).toBe(206);
    expect(answer.headers['content-range']).toBe('bytes 990-999/1000');
    expect(answer.body.equals(body.subarray(990))).toBe(true);
  });

  it('answers 416 for a range that starts at or past the end', async () => {
    for (const range of ['bytes=1000-', 'bytes=5000-']) {
      const answer = await fetchRaw('/logger/1.2.0/logger.tar.gz', { range });
      expect(answer.status).toBe(416);
      expect(answer.headers['content-range']).toBe('bytes */1000');
    }
  });

  it('sends the whole file for a Range header it does not understand', async () => {
    const answer = await fetchRaw('/logger/1.2.0/logger.tar.gz', { range: 'bytes=-100' });
    expect(answer.status).toBe(200);
    expect(answer.body.equals(body)).toBe(true);
  });

  it('answers 404 for missing files, directories and the root', async () => {
    for (const path of ['/nothing.tar.gz', '/logger/1.2.0', '/logger/', '/', '/%zz']) {
      expect((await fetchRaw(path)).status, path).toBe(404);
    }
  });

  it('never leaves the root through `..`, encoded or not', async () => {
    for (const path of [
      '/../secret',
      '/logger/../../secret',
      '/%2e%2e/secret',
      '/..%2fsecret',
      '/logger/..%2f..%2fsecret',
      '/x%00/../../secret',
    ]) {
      const answer = await fetchRaw(path);
      expect(answer.status, path).toBe(404);
      expect(answer.body.toString()).not.toContain('outside');
    }
  });

  it('never leaves the root through a symlink, but follows one that stays inside', async () => {
    expect((await fetchRaw('/escape')).status).toBe(404);
    expect((await fetchRaw('/escape-dir/file')).status).toBe(404);
    const alias = await fetchRaw('/alias.tar.gz');
    expect(alias.status).toBe(200);
    expect(alias.body.equals(body)).toBe(true);
  });

  it('refuses methods other than GET and HEAD', async () => {
    const answer = await fetchRaw('/logger/1.2.0/logger.tar.gz', { method: 'PUT' });
    expect(answer.status).toBe(405);
    expect(answer.headers.allow).toBe('GET, HEAD');
  });
});
