import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RequestError, Response } from 'got';
import { ProxyAgents } from '../git/proxy-agents.js';
import { prepareRemote, redactUrl } from '../git/remote.js';
import type { Artifact } from '../schema/fleet.js';
import { GitfleetError } from '../schema/gitfleet-error.js';
import { hasUrlScheme } from '../schema/packet-name.js';
import { syncPath } from './write-file-atomic.js';

/** Per-request timeouts. A timed-out request is retried and resumes where it stopped. */
export interface ArtifactFetchLimits {
  /** DNS lookup, TCP connect and TLS handshake, each. */
  connectMs: number;
  /** From sending the request to the response headers: a server that accepts and never answers. */
  firstByteMs: number;
  /** No byte received for this long, at any point: a server that stalls mid-body. */
  stallMs: number;
  /** One whole request. Generous: a slow but steady download is cut here and simply resumed. */
  totalMs: number;
}

export const defaultArtifactFetchLimits: ArtifactFetchLimits = {
  connectMs: 10_000,
  firstByteMs: 30_000,
  stallMs: 60_000,
  totalMs: 30 * 60_000,
};

/**
 * Retries on one mirror before the next is tried. A request that made progress does not use up an
 * attempt (downloads keep their bytes across retries), up to `maxRequests` requests per mirror.
 */
export interface ArtifactRetryPolicy {
  /** Failed requests without progress, in a row, before moving on to the next mirror. */
  attempts: number;
  /** Delay after the first failure; doubled after each further one, with jitter (50-100 %). */
  baseDelayMs: number;
  maxDelayMs: number;
  /** Hard cap on requests to one mirror in one call, progress or not. */
  maxRequests: number;
}

export const defaultArtifactRetryPolicy: ArtifactRetryPolicy = {
  attempts: 3,
  baseDelayMs: 500,
  maxDelayMs: 15_000,
  maxRequests: 32,
};

export interface ArtifactFetchProgress {
  /** The URL being read, without credentials. */
  url: string;
  /** Bytes of the artifact held in the partial file so far (never more than `size`). */
  stored: number;
  size: number;
  /** Body bytes read from servers during this call, over every request and mirror. */
  transferred: number;
}

export interface FetchArtifactOptions {
  artifact: Artifact;
  /** `fleet.yaml` `artifacts.mirrors`, in order; relative artifact URLs are resolved against each. */
  mirrors: readonly string[];
  /** Root of the content-addressed cache; created when missing. */
  cacheDir: string;
  limits?: Partial<ArtifactFetchLimits>;
  retries?: Partial<ArtifactRetryPolicy>;
  onProgress?: (progress: ArtifactFetchProgress) => void;
  /** Aborting stops at once with the signal's reason; the partial file is kept for the next call. */
  signal?: AbortSignal;
}

/** Where a verified artifact lives: `<cacheDir>/sha256/<hex>`. */
export function artifactCachePath(cacheDir: string, sha256: string): string {
  return join(cacheDir, 'sha256', sha256.toLowerCase());
}

/**
 * Makes sure the artifact's exact bytes are in the content-addressed cache and returns the file's path.
 *
 * - A cache hit (`<cacheDir>/sha256/<hex>` of the right size) makes no request: files get there only by
 *   a rename after their size and sha256 were checked.
 * - Otherwise the artifact is streamed into `<cacheDir>/partial/<hex>` through sha256, never holding more
 *   than one chunk in memory and never storing more than `size` bytes. A partial file left by an earlier
 *   call or request is re-hashed and resumed with `Range: bytes=N-`; a server that ignores the range
 *   (200), rejects it (416) or answers another range starts the download over.
 * - Relative URLs are tried on each mirror in order (absolute URLs alone); failed requests are retried
 *   with exponential backoff on the same mirror, then the next mirror is tried.
 * - When the bytes are complete, size and sha256 must match exactly; the file is fsynced and renamed
 *   into the cache. Wrong bytes are deleted.
 *
 * Throws `GitfleetError`:
 * - `artifact_mismatch` when a mirror served other bytes (wrong sha256, more or fewer bytes than `size`)
 *   and no mirror served the right ones; `retryable` when another mirror was only unreachable;
 * - `source_unreachable` (retryable) when no mirror could be read (network, timeouts, HTTP errors);
 * - `invalid_manifest` for an unusable artifact (bad sha256, relative URL without mirrors).
 * Messages carry URLs without credentials. Local I/O errors (disk full) are thrown as they are.
 * One call per artifact and cache at a time (the agent is one process with a lock): two calls would
 * append to the same partial file.
 */
export async function fetchArtifact(options: FetchArtifactOptions): Promise<string> {
  const { artifact, signal } = options;
  const sha256 = checkedSha256(artifact);
  const cached = artifactCachePath(options.cacheDir, sha256);
  if (await isCached(cached, artifact.size)) return cached;

  const sources = artifactSources(artifact, options.mirrors);
  // Loaded on the first download, not at start-up: most passes of a device download nothing.
  const client = await import('got');
  const fetcher = new ArtifactFetcher(
    client,
    { ...defaultArtifactFetchLimits, ...options.limits },
    { ...defaultArtifactRetryPolicy, ...options.retries },
    options.onProgress,
    signal,
  );
  await mkdir(join(options.cacheDir, 'partial'), { recursive: true });
  const partial = await PartialFile.open(join(options.cacheDir, 'partial', sha256), artifact.size);
  try {
    const failures: MirrorFailure[] = [];
    for (const source of sources) {
      const failure = await fetcher.fromMirror(source, partial, artifact.size, sha256);
      if (failure === undefined) {
        await partial.commit(cached);
        return cached;
      }
      failures.push(failure);
    }
    throw failedError(artifact, failures);
  } finally {
    await partial.close();
    fetcher.destroy();
  }
}

interface Source {
  /** Without credentials: for requests and messages. */
  url: string;
  headers: Record<string, string>;
}

interface MirrorFailure {
  url: string;
  reason: string;
  /** The mirror served other bytes than the manifest names (as opposed to: could not be read). */
  mismatch: boolean;
}

function checkedSha256(artifact: Artifact): string {
  const sha256 = artifact.sha256.toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(sha256)) {
    throw new GitfleetError(
      'invalid_manifest',
      `artifact ${displayUrl(artifact.url)}: sha256 must be 64 hex digits`,
    );
  }
  if (!Number.isSafeInteger(artifact.size) || artifact.size < 0) {
    throw new GitfleetError(
      'invalid_manifest',
      `artifact ${displayUrl(artifact.url)}: size must be a whole number`,
    );
  }
  return sha256;
}

async function isCached(file: string, size: number): Promise<boolean> {
  try {
    const stats = await stat(file);
    if (stats.isFile() && stats.size === size) return true;
    // Not ours (we only rename verified files in): drop it and download again.
    await rm(file, { recursive: true, force: true });
    return false;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

const absoluteHttp = /^https?:\/\//i;

/**
 * The URLs to try, in order. A relative URL is resolved against each mirror taken as a directory
 * (`https://m/artifacts` + `a/b.tgz` → `https://m/artifacts/a/b.tgz`); a mirror's credentials go only to
 * URLs of the same origin.
 */
function artifactSources(artifact: Artifact, mirrors: readonly string[]): Source[] {
  if (absoluteHttp.test(artifact.url)) return [prepareRemote({ url: artifact.url })];
  if (hasUrlScheme(artifact.url)) {
    throw new GitfleetError(
      'invalid_manifest',
      `artifact URL ${displayUrl(artifact.url)} is neither http(s) nor relative`,
    );
  }
  if (mirrors.length === 0) {
    throw new GitfleetError(
      'invalid_manifest',
      `artifact URL ${displayUrl(artifact.url)} is relative and no artifact mirror is set`,
      {
        hint: 'list artifact mirrors under `artifacts.mirrors` in fleet.yaml',
      },
    );
  }
  return mirrors.map((mirror) => {
    const remote = prepareRemote({ url: mirror });
    const base = new URL(remote.url.endsWith('/') ? remote.url : `${remote.url}/`);
    const url = new URL(artifact.url, base);
    return { url: url.toString(), headers: url.origin === base.origin ? remote.headers : {} };
  });
}

/** A URL fit for messages: no user info and no query (signed URLs carry tokens there). */
function displayUrl(url: string): string {
  if (!absoluteHttp.test(url)) return url.replace(/[?#].*$/s, '');
  const redacted = redactUrl(url);
  if (redacted === '<invalid url>') return redacted;
  const parsed = new URL(redacted);
  return `${parsed.origin}${parsed.pathname}${parsed.search ? '?<redacted>' : ''}`;
}

function failedError(artifact: Artifact, failures: readonly MirrorFailure[]): GitfleetError {
  const detail = failures.map((failure) => `${failure.url}: ${failure.reason}`).join('; ');
  const name = displayUrl(artifact.url);
  if (failures.some((failure) => failure.mismatch)) {
    return new GitfleetError('artifact_mismatch', `artifact ${name} does not match its manifest: ${detail}`, {
      hint: "compare the packet's artifact sha256 and size with the file on the mirror",
      retryable: failures.some((failure) => !failure.mismatch),
    });
  }
  return new GitfleetError('source_unreachable', `artifact ${name} could not be downloaded: ${detail}`, {
    hint: 'check artifacts.mirrors in fleet.yaml, the network and HTTP(S)_PROXY',
    retryable: true,
  });
}

const writeBatchBytes = 1024 * 1024;
const syncBatchBytes = 64 * 1024 * 1024;

/** The download's bytes so far, on disk and hashed: always the same bytes in both. */
class PartialFile {
  private hash: Hash = createHash('sha256');
  private bytes = 0;
  private queued: Buffer[] = [];
  private queuedBytes = 0;
  private writing: Promise<void> = Promise.resolve();
  /** A datasync running beside the download, so that the one before the rename has little left to do. */
  private syncing: Promise<void> = Promise.resolve();
  private unsynced = 0;

  private constructor(
    private readonly path: string,
    private readonly handle: FileHandle,
  ) {}

  /** Opens (creating) the partial file and hashes what an earlier call left in it. */
  static async open(path: string, size: number): Promise<PartialFile> {
    const handle = await open(path, 'a+');
    const partial = new PartialFile(path, handle);
    try {
      const { size: existing } = await handle.stat();
      if (existing > size) await partial.reset();
      else if (existing > 0) {
        for await (const chunk of createReadStream(path, { end: existing - 1 }) as AsyncIterable<Buffer>) {
          partial.hash.update(chunk);
          partial.bytes += chunk.length;
        }
        if (partial.bytes !== existing) await partial.reset();
      }
    } catch (error) {
      await handle.close();
      throw error;
    }
    return partial;
  }

  get stored(): number {
    return this.bytes;
  }

  digest(): string {
    return this.hash.copy().digest('hex');
  }

  /**
   * Hashes `chunk` and queues it; queued chunks go to disk in one `writev` per MiB, with one write in
   * flight while the next MiB arrives. `stored` counts queued bytes: they are written before any later
   * write, reset, commit or close, since each of those waits for the queue.
   */
  async append(chunk: Buffer): Promise<void> {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.queued.push(chunk);
    this.queuedBytes += chunk.length;
    if (this.queuedBytes < writeBatchBytes) return;
    await this.writing;
    this.writing = this.write(this.queued);
    this.queued = [];
    this.queuedBytes = 0;
  }

  /** Waits until every queued byte is on disk (not necessarily synced); rethrows a failed write. */
  async flush(): Promise<void> {
    await this.writing;
    const rest = this.queued;
    this.queued = [];
    this.queuedBytes = 0;
    if (rest.length > 0) await this.write(rest);
    this.writing = Promise.resolve();
  }

  private async write(chunks: Buffer[]): Promise<void> {
    // O_APPEND: the bytes go after the ones hashed before them, which are exactly the file's bytes.
    let pending = chunks;
    while (pending.length > 0) {
      let written = (await this.handle.writev(pending)).bytesWritten;
      while (pending.length > 0 && written >= (pending[0] as Buffer).length) {
        written -= (pending[0] as Buffer).length;
        pending = pending.slice(1);
      }
      if (written > 0) pending = [(pending[0] as Buffer).subarray(written), ...pending.slice(1)];
    }
    this.unsynced += chunks.reduce((sum, chunk) => sum + chunk.length, 0);
    if (this.unsynced >= syncBatchBytes) {
      this.unsynced = 0;
      await this.syncing;
      this.syncing = this.handle.datasync();
    }
  }

  async reset(): Promise<void> {
    await this.flush().catch(() => undefined);
    await this.handle.truncate(0);
    this.hash = createHash('sha256');
    this.bytes = 0;
  }

  /** Durably moves the (verified) bytes to `target`. */
  async commit(target: string): Promise<void> {
    await this.flush();
    await this.syncing;
    await this.handle.sync();
    const dir = join(target, '..');
    await mkdir(dir, { recursive: true });
    await rename(this.path, target);
    await syncPath(dir);
  }

  /** Closes the file; an empty one (nothing kept, or wrong bytes dropped) is removed. */
  async close(): Promise<void> {
    await this.flush().catch(() => undefined);
    await this.syncing.catch(() => undefined);
    await this.handle.close().catch(() => undefined);
    if (this.bytes === 0) await rm(this.path, { force: true });
  }
}

/** What one request ended in. */
type Outcome =
  | { kind: 'complete' }
  /**
   * A network or server failure: try again on this mirror after a backoff. `progressed`: the partial file
   * grew, so the attempt does not count as a failure.
   */
  | { kind: 'retry'; reason: string; progressed: boolean }
  /** The server cannot continue our bytes (416, another range): drop them and ask again at once. */
  | { kind: 'restart'; reason: string }
  /** This mirror will not have it (404, 403, redirect loop): next mirror. */
  | { kind: 'give-up'; reason: string }
  /** This mirror served other bytes: next mirror. */
  | { kind: 'mismatch'; reason: string };

class ArtifactFetcher {
  private readonly agents = new ProxyAgents();
  private transferred = 0;

  constructor(
    private readonly client: typeof import('got'),
    private readonly limits: ArtifactFetchLimits,
    private readonly retries: ArtifactRetryPolicy,
    private readonly onProgress: FetchArtifactOptions['onProgress'],
    private readonly signal: AbortSignal | undefined,
  ) {}

  destroy(): void {
    this.agents.destroy();
  }

  /** Downloads from one mirror with retries; undefined when the partial file now holds the artifact. */
  async fromMirror(
    source: Source,
    partial: PartialFile,
    size: number,
    sha256: string,
  ): Promise<MirrorFailure | undefined> {
    const failure = (reason: string, mismatch = false): MirrorFailure => ({
      url: displayUrl(source.url),
      reason,
      mismatch,
    });
    let failures = 0;
    let requests = 0;
    let retriedMismatch = false;
    for (;;) {
      this.signal?.throwIfAborted();
      // Bytes kept from an earlier request (maybe from another mirror) may be what is wrong on a mismatch.
      const resumed = partial.stored > 0;
      let outcome: Outcome;
      if (partial.stored === size) outcome = verify(partial, size, sha256);
      else if (requests >= this.retries.maxRequests) return failure(`gave up after ${requests} requests`);
      else {
        requests += 1;
        outcome = await this.request(source, partial, size, sha256);
      }
      switch (outcome.kind) {
        case 'complete':
          return undefined;
        case 'mismatch':
          await partial.reset();
          if (resumed && !retriedMismatch) {
            retriedMismatch = true;
            break;
          }
          return failure(outcome.reason, true);
        case 'give-up':
          return failure(outcome.reason);
        case 'restart':
          await partial.reset();
          break;
        case 'retry':
          if (outcome.progressed) {
            failures = 0;
            break;
          }
          failures += 1;
          if (failures >= this.retries.attempts) return failure(outcome.reason);
          await sleep(this.backoff(failures), undefined, { signal: this.signal }).catch((error: unknown) => {
            throw this.signal?.aborted ? this.signal.reason : error;
          });
          break;
      }
    }
  }

  private backoff(failures: number): number {
    const delay = Math.min(this.retries.maxDelayMs, this.retries.baseDelayMs * 2 ** (failures - 1));
    return delay / 2 + (Math.random() * delay) / 2;
  }

  private async request(
    source: Source,
    partial: PartialFile,
    size: number,
    sha256: string,
  ): Promise<Outcome> {
    const offset = partial.stored;
    const stream = this.client.default.stream(source.url, {
      headers: {
        ...source.headers,
        'accept-encoding': 'identity',
        ...(offset > 0 ? { range: `bytes=${offset}-` } : {}),
      },
      agent: this.agents.for(source.url),
      timeout: {
        lookup: this.limits.connectMs,
        connect: this.limits.connectMs,
        secureConnect: this.limits.connectMs,
        response: this.limits.firstByteMs,
        socket: this.limits.stallMs,
        request: this.limits.totalMs,
      },
      retry: { limit: 0 },
      throwHttpErrors: false,
      decompress: false,
      ...(this.signal ? { signal: this.signal } : {}),
    });
    try {
      const response = await new Promise<Response>((resolve, reject) => {
        stream.once('response', resolve);
        stream.once('error', reject);
      });
      const start = this.startOf(response, offset, size);
      if (start.kind !== 'continue') return start;
      if (start.from === 0 && offset > 0) await partial.reset();
      const report = () =>
        this.onProgress?.({
          url: displayUrl(source.url),
          stored: partial.stored,
          size,
          transferred: this.transferred,
        });
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        this.transferred += chunk.length;
        if (chunk.length > size - partial.stored) {
          // Stop at byte size + 1 (this chunk is the last one read): what follows is not this artifact.
          report();
          await partial.reset();
          return { kind: 'mismatch', reason: `size mismatch: expected ${size} bytes, the server sent more` };
        }
        await partial.append(chunk);
        report();
      }
    } catch (error) {
      if (this.signal?.aborted) throw this.signal.reason;
      if (!(error instanceof this.client.RequestError)) throw error;
      return { kind: 'retry', reason: describeRequestError(error), progressed: partial.stored > offset };
    } finally {
      stream.destroy();
    }
    if (partial.stored < size) {
      return {
        kind: 'retry',
        reason: `response ended after ${partial.stored} of ${size} bytes`,
        progressed: partial.stored > offset,
      };
    }
    return verify(partial, size, sha256);
  }

  /** Whether the response continues our bytes (`from` = offset), starts over (0), or is a failure. */
  private startOf(
    response: Response,
    offset: number,
    size: number,
  ): Outcome | { kind: 'continue'; from: number } {
    const status = response.statusCode;
    const length = contentLength(response);
    if (status === 200) {
      if (length !== undefined && length !== size) {
        return {
          kind: 'mismatch',
          reason: `size mismatch: expected ${size} bytes, the server announced ${length}`,
        };
      }
      return { kind: 'continue', from: 0 };
    }
    if (status === 206) {
      const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(response.headers['content-range'] ?? '');
      const [first, last, total] = [Number(range?.[1]), Number(range?.[2]), range?.[3]];
      if (
        !range ||
        first !== offset ||
        last >= size ||
        last < first ||
        (total !== '*' && Number(total) !== size)
      ) {
        return {
          kind: 'restart',
          reason: `unexpected Content-Range ${JSON.stringify(response.headers['content-range'] ?? '')}`,
        };
      }
      return { kind: 'continue', from: offset };
    }
    if (status === 416) return { kind: 'restart', reason: `HTTP 416 for bytes=${offset}-` };
    const reason = `HTTP ${status}`;
    if (status === 408 || status === 425 || status === 429 || status >= 500) {
      return { kind: 'retry', reason, progressed: false };
    }
    return { kind: 'give-up', reason };
  }
}

function verify(partial: PartialFile, size: number, sha256: string): Outcome {
  if (partial.stored !== size) {
    return { kind: 'mismatch', reason: `size mismatch: expected ${size} bytes, got ${partial.stored}` };
  }
  const digest = partial.digest();
  if (digest !== sha256)
    return { kind: 'mismatch', reason: `sha256 mismatch: expected ${sha256}, got ${digest}` };
  return { kind: 'complete' };
}

function contentLength(response: Response): number | undefined {
  const header = response.headers['content-length'];
  if (header === undefined || !/^\d+$/.test(header)) return undefined;
  return Number(header);
}

/** got's messages name the URL, which may be another host after a redirect: keep code and kind only. */
function describeRequestError(error: RequestError): string {
  if (error.name === 'TimeoutError') {
    const event = (error as RequestError & { event?: string }).event ?? 'request';
    return `timeout (${event === 'socket' ? 'stalled' : event})`;
  }
  return error.code ? `${error.name} ${error.code}` : error.name;
}
