import { createHash, randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  fetchArtifact,
  type ArtifactFetchProgress,
  type FetchArtifactOptions,
} from '../src/agent/fetch-artifact.js';
import type { Artifact } from '../src/schema/fleet.js';
import { GitfleetError } from '../src/schema/gitfleet-error.js';
import { startArtifactServer, type ArtifactServer } from './support/artifact-server.js';
import { startForwardProxy, withEnv } from './support/forward-proxy.js';

let work: string;
let root: string;
let first: ArtifactServer;
let second: ArtifactServer;
/** 1 MiB of random bytes, served as `logger/1.0.0/logger.tar.gz`. */
let small: Artifact;
let smallBytes: Buffer;

const KiB = 1024;
const MiB = 1024 * KiB;

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function publish(path: string, bytes: Buffer): Artifact {
  mkdirSync(join(root, path, '..'), { recursive: true });
  writeFileSync(join(root, path), bytes);
  return { url: path, sha256: sha256(bytes), size: bytes.length };
}

/** Writes `size` random bytes chunk by chunk, hashing as it goes: never the whole file in memory. */
async function publishLarge(path: string, size: number): Promise<Artifact> {
  const hash = createHash('sha256');
  const handle = await open(join(root, path), 'w');
  try {
    for (let written = 0; written < size; written += MiB) {
      const chunk = randomBytes(Math.min(MiB, size - written));
      hash.update(chunk);
      await handle.write(chunk);
    }
  } finally {
    await handle.close();
  }
  return { url: path, sha256: hash.digest('hex'), size };
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'gitfleet-fetch-'));
  root = join(work, 'mirror');
  mkdirSync(root);
  smallBytes = randomBytes(MiB);
  small = publish('logger/1.0.0/logger.tar.gz', smallBytes);
  first = await startArtifactServer(root);
  second = await startArtifactServer(root);
});

afterAll(async () => {
  await first?.close();
  await second?.close();
  rmSync(work, { recursive: true, force: true });
});

let cacheDir: string;
beforeEach(async () => {
  cacheDir = mkdtempSync(join(work, 'cache-'));
  await first.setMode('normal');
  await second.setMode('normal');
  first.resetLog();
  second.resetLog();
});

const fast: Pick<FetchArtifactOptions, 'limits' | 'retries'> = {
  limits: { connectMs: 1000, firstByteMs: 1000, stallMs: 300, totalMs: 10_000 },
  retries: { attempts: 2, baseDelayMs: 10, maxDelayMs: 50 },
};

/** Fetches `artifact` from the given mirrors into this test's cache, recording progress events. */
function fetchFrom(
  mirrors: string[],
  artifact: Artifact = small,
  options: Partial<FetchArtifactOptions> = {},
) {
  const progress: ArtifactFetchProgress[] = [];
  const result = fetchArtifact({
    artifact,
    mirrors,
    cacheDir,
    ...fast,
    onProgress: (event) => progress.push(event),
    ...options,
  });
  return { result, progress };
}

async function rejection(promise: Promise<unknown>): Promise<GitfleetError> {
  const error: unknown = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(GitfleetError);
  return error as GitfleetError;
}

const cached = (artifact: Artifact) => join(cacheDir, 'sha256', artifact.sha256);
const partialPath = (artifact: Artifact) => join(cacheDir, 'partial', artifact.sha256);
const list = (dir: string) => (existsSync(dir) ? readdirSync(dir) : []);
const transferred = (progress: ArtifactFetchProgress[]) => progress.at(-1)?.transferred ?? 0;

describe('fetchArtifact', () => {
  it('downloads into the content-addressed cache; a second call is a cache hit without a request', async () => {
    const path = await fetchFrom([first.url]).result;
    expect(path).toBe(cached(small));
    expect(sha256(readFileSync(path))).toBe(small.sha256);
    expect(list(join(cacheDir, 'partial'))).toEqual([]);
    expect(first.requests).toMatchObject([
      { path: '/logger/1.0.0/logger.tar.gz', range: undefined, status: 200 },
    ]);

    await expect(fetchFrom([first.url]).result).resolves.toBe(path);
    expect(first.requests).toHaveLength(1);
  });

  it('resolves relative URLs against a mirror path taken as a directory; absolute URLs skip the mirrors', async () => {
    const nested = publish('mirror-a/pkg/x.tar.gz', randomBytes(1000));
    await fetchFrom([`${first.url}/mirror-a`], { ...nested, url: 'pkg/x.tar.gz' }).result;
    expect(first.requests.map((request) => request.path)).toEqual(['/mirror-a/pkg/x.tar.gz']);

    await fetchFrom([second.url], { ...small, url: first.urlOf(small.url) }).result;
    expect(second.requests).toHaveLength(0);
    expect(first.requests).toHaveLength(2);
  });

  it('resumes a cut download with a Range request at the cut offset', async () => {
    await first.setMode('cut', { cutAfterBytes: 300 * KiB, times: 1 });
    const { result, progress } = fetchFrom([first.url]);
    expect(sha256(readFileSync(await result))).toBe(small.sha256);
    expect(first.requests).toMatchObject([
      { range: undefined, status: 200, bytesSent: 300 * KiB },
      { range: `bytes=${300 * KiB}-`, status: 206, bytesSent: MiB - 300 * KiB },
    ]);
    expect(transferred(progress)).toBe(MiB);
  });

  it('re-hashes a partial file left by an earlier call and resumes it', async () => {
    await first.setMode('cut', { cutAfterBytes: 200 * KiB, times: 1 });
    const failed = await rejection(fetchFrom([first.url], small, { retries: { maxRequests: 1 } }).result);
    expect(failed.code).toBe('source_unreachable');
    expect(failed.retryable).toBe(true);
    expect(readFileSync(partialPath(small))).toHaveLength(200 * KiB);

    first.resetLog();
    const { result, progress } = fetchFrom([first.url]);
    expect(sha256(readFileSync(await result))).toBe(small.sha256);
    expect(first.requests).toMatchObject([{ range: `bytes=${200 * KiB}-`, status: 206 }]);
    expect(transferred(progress)).toBe(MiB - 200 * KiB);
    expect(existsSync(partialPath(small))).toBe(false);
  });

  it('starts over when the server ignores the Range header', async () => {
    await first.setMode('cut', { cutAfterBytes: 100 * KiB, times: 1, then: 'ignore-range' });
    const { result, progress } = fetchFrom([first.url]);
    expect(sha256(readFileSync(await result))).toBe(small.sha256);
    expect(first.requests).toMatchObject([
      { range: undefined, status: 200 },
      { range: `bytes=${100 * KiB}-`, status: 200, bytesSent: MiB },
    ]);
    expect(transferred(progress)).toBe(100 * KiB + MiB);
  });

  it('downloads again from byte 0 when resumed bytes turn out wrong', async () => {
    mkdirSync(join(cacheDir, 'partial'));
    writeFileSync(partialPath(small), randomBytes(100 * KiB));
    const path = await fetchFrom([first.url]).result;
    expect(sha256(readFileSync(path))).toBe(small.sha256);
    expect(first.requests).toMatchObject([
      { range: `bytes=${100 * KiB}-`, status: 206 },
      { range: undefined, status: 200 },
    ]);
  });

  it('refuses bytes with another sha256: artifact_mismatch, no cache entry, no partial file', async () => {
    await first.setMode('wrong-bytes');
    const error = await rejection(fetchFrom([first.url]).result);
    expect(error.code).toBe('artifact_mismatch');
    expect(error.retryable).toBe(false);
    expect(error.message).toContain(`sha256 mismatch: expected ${small.sha256}`);
    expect(error.message).toContain(first.urlOf(small.url));
    expect(list(join(cacheDir, 'sha256'))).toEqual([]);
    expect(list(join(cacheDir, 'partial'))).toEqual([]);
  });

  it('stops reading at size + 1 bytes when the server sends more than the manifest size', async () => {
    await first.setMode('too-long', { extraBytes: 64 * MiB });
    const { result, progress } = fetchFrom([first.url]);
    const error = await rejection(result);
    expect(error.code).toBe('artifact_mismatch');
    expect(error.message).toContain(`size mismatch: expected ${small.size} bytes, the server sent more`);
    // Read from the server: the artifact's bytes and at most one chunk more.
    expect(transferred(progress)).toBeGreaterThan(small.size);
    expect(transferred(progress)).toBeLessThanOrEqual(small.size + 64 * KiB);
    // The server could not push its 64 MiB: only what socket buffers hold was ever written.
    expect(Math.max(...first.requests.map((request) => request.bytesSent))).toBeLessThan(
      small.size + 32 * MiB,
    );
    expect(list(join(cacheDir, 'sha256'))).toEqual([]);
    expect(list(join(cacheDir, 'partial'))).toEqual([]);
  });

  it('refuses a response whose Content-Length is not the manifest size without reading it', async () => {
    const error = await rejection(fetchFrom([first.url], { ...small, size: small.size - 1 }).result);
    expect(error.code).toBe('artifact_mismatch');
    expect(error.message).toContain(`the server announced ${small.size}`);
  });

  it.each([
    ['down', 0],
    ['error-500', 2],
  ] as const)('uses the second mirror when the first is %s', async (mode, requests) => {
    await first.setMode(mode);
    const path = await fetchFrom([first.url, second.url]).result;
    expect(sha256(readFileSync(path))).toBe(small.sha256);
    expect(first.requests).toHaveLength(requests);
    expect(second.requests).toHaveLength(1);
  });

  it('gives up on a mirror at once on 404', async () => {
    const elsewhere = publish('only-here/x.bin', randomBytes(2000));
    const { result } = fetchFrom([`${first.url}/nowhere`, `${second.url}/only-here`], {
      ...elsewhere,
      url: 'x.bin',
    });
    await result;
    expect(first.requests).toMatchObject([{ status: 404 }]);
    expect(second.requests).toMatchObject([{ status: 200 }]);
  });

  it('times out a stalled mirror and resumes from the next one', async () => {
    await first.setMode('stall', { stallAfterBytes: 64 * KiB });
    const path = await fetchFrom([first.url, second.url], small, { retries: { attempts: 1 } }).result;
    // Each stalled request was cut where the server stopped sending, not waited out to its end.
    expect(first.requests.map((r) => r.bytesSent)).toEqual([64 * KiB, 64 * KiB]);
    expect(sha256(readFileSync(path))).toBe(small.sha256);
    // The first request made progress (64 KiB), so it was retried; the second only repeated those bytes.
    expect(first.requests).toMatchObject([{ range: undefined }, { range: `bytes=${64 * KiB}-` }]);
    expect(second.requests).toMatchObject([{ range: `bytes=${64 * KiB}-`, status: 206 }]);
  });

  it('stops at once when aborted and keeps the bytes so far for the next call', async () => {
    await first.setMode('stall', { stallAfterBytes: 64 * KiB });
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('agent stopping')), 200);
    const { result } = fetchFrom([first.url], small, {
      limits: { stallMs: 10_000 },
      signal: controller.signal,
    });
    await expect(result).rejects.toThrow('agent stopping');
    expect(readFileSync(partialPath(small))).toHaveLength(64 * KiB);
  });

  it('throws a retryable source_unreachable when no mirror can be read', async () => {
    await first.setMode('down');
    await second.setMode('error-500');
    const error = await rejection(fetchFrom([first.url, second.url]).result);
    expect(error.code).toBe('source_unreachable');
    expect(error.retryable).toBe(true);
    expect(error.message).toContain(first.url);
    expect(error.message).toContain('HTTP 500');
  });

  it('keeps mirror credentials out of messages and sends them only to the mirror', async () => {
    await first.setMode('wrong-bytes');
    const mirror = first.url.replace('http://', 'http://fleet:s3cret@');
    const error = await rejection(fetchFrom([mirror]).result);
    expect(error.message).not.toContain('s3cret');
    expect(first.requests[0]?.authorized).toBe(true);
  });

  it('goes through HTTP_PROXY from the environment', async () => {
    const proxy = await startForwardProxy();
    try {
      await withEnv({ HTTP_PROXY: proxy.url, NO_PROXY: '' }, async () => {
        await fetchFrom([first.url]).result;
      });
      expect(proxy.seen).toEqual([first.urlOf(small.url)]);
    } finally {
      await proxy.close();
    }
  });

  it('refuses a relative URL without mirrors', async () => {
    const error = await rejection(fetchFrom([]).result);
    expect(error.code).toBe('invalid_manifest');
  });

  it('downloads a 64 MiB artifact with flat memory', async () => {
    const large = await publishLarge('large.bin', 64 * MiB);
    const before = process.memoryUsage().rss;
    let peak = before;
    const path = await fetchFrom([first.url], large, {
      onProgress: () => {
        peak = Math.max(peak, process.memoryUsage().rss);
      },
    }).result;
    peak = Math.max(peak, process.memoryUsage().rss);
    expect(path).toBe(cached(large));
    expect(peak - before).toBeLessThan(48 * MiB);
  });
});
