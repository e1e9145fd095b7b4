import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { isBelow } from './is-inside.js';
import { pipeline } from 'node:stream/promises';
import { listenOnLoopback, stopListening, type LoopbackServer } from '../git/listen-on-loopback.js';

/** A regular file below the served root. */
export interface ServedFile {
  /** Its real path (symlinks resolved), inside the root's real path. */
  path: string;
  size: number;
}

/**
 * The regular file a URL path (`/logger/1.2.0/logger-amd64.tar.gz`, percent-encoded as received) names
 * below `root`, or undefined when there is none or it is not confined to `root`: a malformed encoding, a
 * NUL byte or a `..` segment is refused before the file system is asked, and a path that leaves `root`
 * through a symlink (in any component) is refused after resolving it. `root` must be a real path.
 */
export async function locateServedFile(root: string, urlPath: string): Promise<ServedFile | undefined> {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return undefined;
  }
  const segments = decoded.split('/').filter((s) => s !== '' && s !== '.');
  if (decoded.includes('\0') || segments.includes('..') || segments.length === 0) return undefined;
  const real = await realpath(join(root, ...segments)).catch(() => undefined);
  if (real === undefined) return undefined;
  if (!isBelow(root, real)) return undefined;
  const info = await stat(real).catch(() => undefined);
  return info?.isFile() ? { path: real, size: info.size } : undefined;
}

/**
 * The byte range a `Range` header asks for, `{start, end}` with `end` exclusive: `bytes=N-` (to the end)
 * or `bytes=N-M` (M clamped to the file). Undefined when there is no header or it is not one of those
 * forms (the whole file is then sent, as RFC 9110 allows); `unsatisfiable` (416) when N is past the end.
 */
export function parseByteRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | 'unsatisfiable' | undefined {
  const match = /^bytes=(\d+)-(\d*)$/.exec(header ?? '');
  if (!match) return undefined;
  const start = Number(match[1]);
  if (start >= size) return 'unsatisfiable';
  const end = match[2] ? Math.min(size, Number(match[2]) + 1) : size;
  return end > start ? { start, end } : 'unsatisfiable';
}

/** Bytes `start` (inclusive) to `end` (exclusive) of a file, in chunks of at most `chunkSize`. */
export async function* readFileRange(
  file: string,
  start: number,
  end: number,
  chunkSize = 64 * 1024,
): AsyncGenerator<Buffer> {
  if (end <= start) return;
  yield* createReadStream(file, { start, end: end - 1, highWaterMark: chunkSize }) as AsyncIterable<Buffer>;
}

async function answer(root: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  req.resume();
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' });
    res.end('only GET and HEAD\n');
    return;
  }
  const file = await locateServedFile(root, new URL(req.url ?? '/', 'http://127.0.0.1').pathname);
  if (!file) {
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found\n');
    return;
  }
  const range = parseByteRange(req.headers.range, file.size);
  if (range === 'unsatisfiable') {
    res.writeHead(416, { 'content-range': `bytes */${file.size}` });
    res.end();
    return;
  }
  const { start, end } = range ?? { start: 0, end: file.size };
  const headers = {
    'content-type': 'application/octet-stream',
    'content-length': end - start,
    'accept-ranges': 'bytes',
  };
  if (range) res.writeHead(206, { ...headers, 'content-range': `bytes ${start}-${end - 1}/${file.size}` });
  else res.writeHead(200, headers);
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  await pipeline(readFileRange(file.path, start, end), res);
}

/**
 * Serves the files below `root` read-only on 127.0.0.1, as any static web server would serve artifacts:
 * GET and HEAD, `Range: bytes=N-` and `bytes=N-M` (206, or 416 past the end), 404 for anything that is not
 * a regular file confined to `root` (see `locateServedFile`). `port` 0 (the default) picks a free port.
 */
export async function serveArtifacts(root: string, options: { port?: number } = {}): Promise<LoopbackServer> {
  const realRoot = await realpath(root);
  const server = createServer((req, res) => {
    // A client that goes away mid-body rejects the pipeline: nothing to report, the socket is gone.
    answer(realRoot, req, res).catch(() => res.destroy());
  });
  const port = await listenOnLoopback(server, options.port ?? 0);
  return { url: `http://127.0.0.1:${port}`, close: () => stopListening(server) };
}
