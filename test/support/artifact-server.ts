import { realpath } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { locateServedFile, parseByteRange, readFileRange } from '../../src/agent/serve-artifacts.js';
import { listenOnLoopback, stopListening } from './loopback-listener.js';

/**
 * A real HTTP server for artifact downloads in tests: serves the files below a root directory on
 * loopback with `Range: bytes=N-` support, switchable faults and a request log. Files are found and
 * ranges read as `serveArtifacts` does.
 */

/**
 * - `normal`: 200, or 206 for a satisfiable `bytes=N-` / `bytes=N-M` range, 416 for one past the end.
 * - `ignore-range`: always 200 with the whole file.
 * - `cut`: like normal, but the socket is closed 100 ms after `cutAfterBytes` body bytes of a response.
 * - `too-long`: 200 without Content-Length: the whole file, then `extraBytes` more bytes.
 * - `wrong-bytes`: like normal, same length, every byte flipped.
 * - `stall`: 200 headers with the right Content-Length and `stallAfterBytes` body bytes, then nothing.
 * - `error-500`: every request is answered 500.
 * - `down`: the listener is closed; switching back re-listens on the same port.
 */
export type ArtifactServerMode =
  'normal' | 'ignore-range' | 'cut' | 'too-long' | 'wrong-bytes' | 'stall' | 'error-500' | 'down';

export interface ArtifactFaultOptions {
  /** `cut`: body bytes sent before the socket is closed. Default 64 KiB. */
  cutAfterBytes?: number;
  /** `too-long`: bytes sent after the file. Default 16 MiB. */
  extraBytes?: number;
  /** `stall`: body bytes sent before hanging. Default 0. */
  stallAfterBytes?: number;
  /** How many responses get the fault; then the server switches to `then`. Default: all of them. */
  times?: number;
  /** The mode after `times` faulty responses. Default `normal`. */
  then?: Exclude<ArtifactServerMode, 'down'>;
}

export interface ArtifactRequestLogEntry {
  method: string;
  /** URL path as received. */
  path: string;
  /** The Range header, if any. */
  range: string | undefined;
  /** Whether an Authorization header came with the request (its value is never logged). */
  authorized: boolean;
  /** 0 until the status line is sent. */
  status: number;
  /** Body bytes written so far. */
  bytesSent: number;
}

export interface ArtifactServer {
  /** `http://127.0.0.1:PORT`, stable for the server's life (also across `down`). */
  readonly url: string;
  readonly mode: ArtifactServerMode;
  readonly requests: readonly ArtifactRequestLogEntry[];
  /** `${url}/${path}`. */
  urlOf(path: string): string;
  resetLog(): void;
  /** Resolves once the mode is in effect (for `down`: the listener is closed, sockets destroyed). */
  setMode(mode: ArtifactServerMode, faults?: ArtifactFaultOptions): Promise<void>;
  /** Destroys open (also stalled) connections and stops listening. Idempotent. */
  close(): Promise<void>;
}

/** Serves the files below `root`. Call close() in afterAll. */
export async function startArtifactServer(root: string): Promise<ArtifactServer> {
  const server = new FileServer(await realpath(root));
  await server.listen(0);
  return server;
}

const chunkSize = 64 * 1024;

class FileServer implements ArtifactServer {
  readonly requests: ArtifactRequestLogEntry[] = [];
  private readonly server: Server;
  private port = 0;
  private current: ArtifactServerMode = 'normal';
  private faults: ArtifactFaultOptions = {};
  private remaining = Infinity;

  constructor(private readonly root: string) {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch(() => res.destroy());
    });
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get mode(): ArtifactServerMode {
    return this.current;
  }

  urlOf(path: string): string {
    return `${this.url}/${path}`;
  }

  resetLog(): void {
    this.requests.length = 0;
  }

  async setMode(mode: ArtifactServerMode, faults: ArtifactFaultOptions = {}): Promise<void> {
    const wasDown = this.current === 'down';
    this.current = mode;
    this.faults = faults;
    this.remaining = faults.times ?? Infinity;
    if (mode === 'down' && !wasDown) await this.stopListening();
    if (mode !== 'down' && wasDown) await this.listen(this.port);
  }

  async close(): Promise<void> {
    await this.stopListening();
  }

  async listen(port: number): Promise<void> {
    this.port = await listenOnLoopback(this.server, port);
  }

  private async stopListening(): Promise<void> {
    await stopListening(this.server);
  }

  /** The mode for this response; counts down `times`. */
  private takeMode(): ArtifactServerMode {
    const mode = this.current;
    if (mode === 'normal' || mode === 'down') return mode;
    this.remaining -= 1;
    if (this.remaining <= 0) {
      this.current = this.faults.then ?? 'normal';
      this.remaining = Infinity;
    }
    return mode;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const entry: ArtifactRequestLogEntry = {
      method: req.method ?? 'GET',
      path: url.pathname,
      range: req.headers.range,
      authorized: req.headers.authorization !== undefined,
      status: 0,
      bytesSent: 0,
    };
    this.requests.push(entry);
    const faults = this.faults;
    const mode = this.takeMode();
    const reply = (status: number, headers: Record<string, string | number> = {}) => {
      entry.status = status;
      res.writeHead(status, headers);
    };
    if (mode === 'down') return; // raced the listener closing: the socket is destroyed
    if (mode === 'error-500') {
      reply(500, { 'content-type': 'text/plain' });
      res.end('injected failure\n');
      return;
    }
    const found = await locateServedFile(this.root, url.pathname);
    if (!found) {
      reply(404, { 'content-type': 'text/plain' });
      res.end('not found\n');
      return;
    }
    const { path: file, size } = found;

    if (mode === 'too-long') {
      reply(200, { 'content-type': 'application/octet-stream' });
      if (!(await send(res, entry, readFileRange(file, 0, size)))) return;
      await send(res, entry, filler(faults.extraBytes ?? 16 * 1024 * 1024));
      res.end();
      return;
    }
    if (mode === 'stall') {
      reply(200, { 'content-type': 'application/octet-stream', 'content-length': size });
      res.flushHeaders();
      const head = Math.min(size, faults.stallAfterBytes ?? 0);
      if (head > 0) await send(res, entry, readFileRange(file, 0, head));
      return; // never ends: the client has to time out
    }

    const range = mode === 'ignore-range' ? undefined : parseByteRange(req.headers.range, size);
    if (range === 'unsatisfiable') {
      reply(416, { 'content-range': `bytes */${size}` });
      res.end();
      return;
    }
    const start = range?.start ?? 0;
    const end = range?.end ?? size;
    const headers = { 'content-type': 'application/octet-stream', 'content-length': end - start };
    if (range) reply(206, { ...headers, 'content-range': `bytes ${start}-${end - 1}/${size}` });
    else reply(200, headers);
    let body = readFileRange(file, start, end);
    if (mode === 'wrong-bytes') body = flip(body);
    if (mode === 'cut') body = truncate(body, faults.cutAfterBytes ?? 64 * 1024);
    if (!(await send(res, entry, body))) return;
    if (mode === 'cut') {
      // Let the client read what was sent first: a client's HTTP stack drops bytes it had buffered but
      // not yet handed on when the connection breaks, which would make the resume offset vary.
      await new Promise((resolve) => setTimeout(resolve, 100));
      res.socket?.destroy();
      return;
    }
    res.end();
  }
}

function* filler(bytes: number): Generator<Buffer> {
  const chunk = Buffer.alloc(chunkSize, 0x61);
  for (let left = bytes; left > 0; left -= chunk.length)
    yield chunk.subarray(0, Math.min(left, chunk.length));
}

async function* flip(body: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  for await (const chunk of body) yield Buffer.from(chunk.map((byte) => byte ^ 0xff));
}

async function* truncate(body: AsyncIterable<Buffer>, bytes: number): AsyncGenerator<Buffer> {
  let left = bytes;
  for await (const chunk of body) {
    if (left <= 0) return;
    yield chunk.subarray(0, left);
    left -= chunk.length;
  }
}

/**
 * Writes the chunks with backpressure, counting them into the log once flushed to the socket.
 * False when the client went away.
 */
async function send(
  res: ServerResponse,
  entry: ArtifactRequestLogEntry,
  body: AsyncIterable<Buffer> | Iterable<Buffer>,
): Promise<boolean> {
  let closed = res.destroyed;
  let onClose = () => undefined as void;
  const gone = new Promise<boolean>((resolve) => {
    onClose = () => {
      closed = true;
      resolve(false);
    };
    res.once('close', onClose);
  });
  try {
    for await (const chunk of body) {
      if (closed) return false;
      const written = new Promise<boolean>((resolve) => {
        res.write(chunk, (error) => resolve(!error));
      });
      if (!(await Promise.race([written, gone]))) return false;
      entry.bytesSent += chunk.length;
    }
    return !closed;
  } finally {
    res.off('close', onClose);
  }
}
