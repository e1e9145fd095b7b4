import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { GitHttpBackend } from '../../src/git/serve-git-http.js';
import { listenOnLoopback, stopListening } from './loopback-listener.js';

/**
 * A real git smart-HTTP server for integration tests: stock `git http-backend` run as CGI behind a node
 * http server on loopback (the CGI bridge is `GitHttpBackend`, the one `serveGitHttp` uses), with a
 * request log and switchable faults for tamper tests.
 */

/**
 * - `normal`: every request goes to http-backend.
 * - `garbage`: every request is answered 200 with 512 random bytes (first byte 0xff, so never a valid
 *   pkt-line) under the content type git expects.
 * - `truncate-pack`: ref advertisements (GET info/refs, and protocol v2 `ls-refs`) pass through; every
 *   other `git-upload-pack` POST response is cut in half and ends cleanly, so only the pack is damaged.
 * - `hang`: requests are accepted and never answered.
 * - `down`: the listener is closed; switching back re-listens on the same port.
 */
export type GitServerMode = 'normal' | 'garbage' | 'truncate-pack' | 'hang' | 'down';

export interface GitRequestLogEntry {
  method: string;
  /** URL path as received, e.g. `/fleet.git/info/refs`. */
  path: string;
  /** Raw query string without `?`, e.g. `service=git-upload-pack`. */
  query: string;
  /** Response body bytes written so far (headers not counted). */
  bytesSent: number;
}

export interface GitServerOptions {
  mode?: GitServerMode;
}

export interface GitServer {
  /** `http://127.0.0.1:PORT`, stable for the server's life (also across `down`). */
  readonly url: string;
  readonly mode: GitServerMode;
  /** Every request in arrival order; entries are added when a request arrives, bytes as they are sent. */
  readonly requests: readonly GitRequestLogEntry[];
  /** `${url}/${repoName}`; repoName is a path below the root, e.g. `fleet.git`. */
  urlOf(repoName: string): string;
  resetLog(): void;
  /** Resolves once the fault is in effect (for `down`: the listener is closed and sockets destroyed). */
  setMode(mode: GitServerMode): Promise<void>;
  /** Destroys open sockets, kills running http-backend processes and waits for both. Idempotent. */
  close(): Promise<void>;
}

/**
 * Serves every repository below `root` (receive-pack enabled for all of them) on a random loopback port.
 * Call close() in afterAll: open sockets and child processes would otherwise keep vitest alive.
 */
export async function startGitServer(root: string, options: GitServerOptions = {}): Promise<GitServer> {
  const server = new HttpBackendServer(root);
  await server.listen(0);
  await server.setMode(options.mode ?? 'normal');
  return server;
}

/** A loopback URL nothing listens on (the port was free a moment ago): for "server down" tests. */
export async function unusedUrl(): Promise<string> {
  const probe = createNetServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', resolve);
  });
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

class HttpBackendServer implements GitServer {
  readonly requests: GitRequestLogEntry[] = [];
  private readonly server: Server;
  private readonly backend: GitHttpBackend;
  private port = 0;
  private current: GitServerMode = 'normal';
  private closed = false;

  constructor(root: string) {
    this.backend = new GitHttpBackend(root);
    this.server = createServer((req, res) => this.handle(req, res));
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get mode(): GitServerMode {
    return this.current;
  }

  urlOf(repoName: string): string {
    return `${this.url}/${repoName}`;
  }

  resetLog(): void {
    this.requests.length = 0;
  }

  async setMode(mode: GitServerMode): Promise<void> {
    if (this.closed) throw new Error('git server is closed');
    const wasDown = this.current === 'down';
    this.current = mode;
    if (mode === 'down' && !wasDown) await this.stopListening();
    if (mode !== 'down' && wasDown) await this.listen(this.port);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.stopListening();
  }

  async listen(port: number): Promise<void> {
    this.port = await listenOnLoopback(this.server, port);
  }

  private async stopListening(): Promise<void> {
    await stopListening(this.server);
    await this.backend.killAll();
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const entry: GitRequestLogEntry = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: url.search.slice(1),
      bytesSent: 0,
    };
    this.requests.push(entry);
    switch (this.current) {
      case 'hang':
      case 'down': // a keep-alive request that raced the listener closing: leave it to be destroyed
        return;
      case 'garbage': {
        req.resume();
        const body = randomBytes(512);
        body[0] = 0xff; // never a hex pkt-line length, so every client fails the same way on the first line
        res.writeHead(200, { 'Content-Type': expectedContentType(entry), 'Cache-Control': 'no-cache' });
        entry.bytesSent = body.length;
        res.end(body);
        return;
      }
      case 'normal':
      case 'truncate-pack': {
        const truncate = this.current === 'truncate-pack' && isUploadPackPost(entry);
        this.runBackend(req, res, entry, truncate);
        return;
      }
    }
  }

  private runBackend(
    req: IncomingMessage,
    res: ServerResponse,
    entry: GitRequestLogEntry,
    truncate: boolean,
  ) {
    const onBodyBytes = (bytes: number) => {
      entry.bytesSent += bytes;
    };
    if (!truncate) return this.backend.handle(req, res, { onBodyBytes });
    // Protocol v2 lists refs by POSTing `command=ls-refs` to git-upload-pack: that is still the ref
    // advertisement, so truncate-pack must let it through. It is small, hence never gzipped.
    let requestHead = Buffer.alloc(0);
    req.on('data', (chunk: Buffer) => {
      if (requestHead.length < 64) requestHead = Buffer.concat([requestHead, chunk]);
    });
    const rewriteBody = (body: Buffer) =>
      requestHead.includes('command=ls-refs') ? body : body.subarray(0, Math.floor(body.length / 2));
    this.backend.handle(req, res, { onBodyBytes, rewriteBody });
  }
}

function isUploadPackPost(entry: GitRequestLogEntry): boolean {
  return entry.method === 'POST' && entry.path.endsWith('/git-upload-pack');
}

/** The content type http-backend would use, so garbage reaches git's pkt-line parser, not a type check. */
function expectedContentType(entry: GitRequestLogEntry): string {
  const service = /(?:^|&)service=(git-[a-z-]+)/.exec(entry.query)?.[1];
  if (entry.path.endsWith('/info/refs') && service) return `application/x-${service}-advertisement`;
  const post = /\/(git-upload-pack|git-receive-pack)$/.exec(entry.path)?.[1];
  return post ? `application/x-${post}-result` : 'application/octet-stream';
}
