import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { listenOnLoopback, stopListening } from './loopback-listener.js';

/**
 * A real git smart-HTTP server for integration tests: stock `git http-backend` run as CGI behind a node
 * http server on loopback, with a request log and switchable faults for tamper tests.
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
  private readonly children = new Map<ChildProcess, Promise<void>>();
  private port = 0;
  private current: GitServerMode = 'normal';
  private closed = false;

  constructor(private readonly root: string) {
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
    for (const child of this.children.keys()) child.kill('SIGKILL');
    await Promise.all(this.children.values());
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
    const child = spawn('git', ['http-backend'], { env: this.cgiEnv(req, entry), stdio: 'pipe' });
    this.children.set(child, new Promise((resolve) => child.once('close', () => resolve())));
    child.once('close', () => this.children.delete(child));
    // http-backend may exit without reading the body (errors, GET): the resulting EPIPE is expected.
    child.stdin.on('error', () => undefined);
    req.pipe(child.stdin);
    // Protocol v2 lists refs by POSTing `command=ls-refs` to git-upload-pack: that is still the ref
    // advertisement, so truncate-pack must let it through. It is small, hence never gzipped.
    let requestHead = Buffer.alloc(0);
    if (truncate) {
      req.on('data', (chunk: Buffer) => {
        if (requestHead.length < 64) requestHead = Buffer.concat([requestHead, chunk]);
      });
    }
    res.once('close', () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });

    let head: Buffer | undefined = Buffer.alloc(0);
    const held: Buffer[] = [];
    const stderr: Buffer[] = [];
    const send = (chunk: Buffer): void => {
      if (truncate) {
        held.push(chunk);
        return;
      }
      entry.bytesSent += chunk.length;
      if (!res.write(chunk)) {
        child.stdout.pause();
        res.once('drain', () => child.stdout.resume());
      }
    };
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.stdout.on('data', (chunk: Buffer) => {
      if (head === undefined) return send(chunk);
      head = Buffer.concat([head, chunk]);
      const end = findHeaderEnd(head);
      if (end === undefined) return;
      writeCgiHead(res, head.subarray(0, end.start).toString('latin1'));
      const rest = head.subarray(end.body);
      head = undefined;
      if (rest.length > 0) send(rest);
    });
    child.once('error', (error) => {
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' });
      res.end(`cannot run git http-backend: ${error.message}\n`);
    });
    child.once('close', () => {
      if (res.destroyed || res.writableEnded) return;
      if (head !== undefined) {
        res.writeHead(502, { 'Content-Type': 'text/plain' });
        res.end(`git http-backend sent no CGI headers: ${Buffer.concat(stderr).toString('utf8')}`);
        return;
      }
      if (truncate) {
        const body = Buffer.concat(held);
        const listsRefs = requestHead.includes('command=ls-refs');
        const sent = listsRefs ? body : body.subarray(0, Math.floor(body.length / 2));
        entry.bytesSent += sent.length;
        res.end(sent);
        return;
      }
      res.end();
    });
  }

  private cgiEnv(req: IncomingMessage, entry: GitRequestLogEntry): NodeJS.ProcessEnv {
    const optional = (name: string, value: string | string[] | undefined): Record<string, string> =>
      typeof value === 'string' ? { [name]: value } : {};
    return {
      PATH: process.env.PATH,
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_CONFIG_GLOBAL: '/dev/null',
      // Command-line-scope config reaches http-backend and the upload-pack/receive-pack it runs.
      GIT_CONFIG_COUNT: '1',
      GIT_CONFIG_KEY_0: 'http.receivepack',
      GIT_CONFIG_VALUE_0: 'true',
      GIT_PROJECT_ROOT: this.root,
      GIT_HTTP_EXPORT_ALL: '1',
      GATEWAY_INTERFACE: 'CGI/1.1',
      SERVER_PROTOCOL: `HTTP/${req.httpVersion}`,
      REQUEST_METHOD: entry.method,
      PATH_INFO: decodeURIComponent(entry.path),
      QUERY_STRING: entry.query,
      REMOTE_ADDR: req.socket.remoteAddress ?? '127.0.0.1',
      ...optional('CONTENT_TYPE', req.headers['content-type']),
      ...optional('CONTENT_LENGTH', req.headers['content-length']),
      ...optional('GIT_PROTOCOL', req.headers['git-protocol']),
      ...optional('HTTP_CONTENT_ENCODING', req.headers['content-encoding']),
    };
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

/** Where the CGI header block ends (`start`) and the body begins (`body`); CGI allows LF or CRLF. */
function findHeaderEnd(buffer: Buffer): { start: number; body: number } | undefined {
  const crlf = buffer.indexOf('\r\n\r\n');
  const lf = buffer.indexOf('\n\n');
  if (crlf === -1 && lf === -1) return undefined;
  if (lf === -1 || (crlf !== -1 && crlf < lf)) return { start: crlf, body: crlf + 4 };
  return { start: lf, body: lf + 2 };
}

function writeCgiHead(res: ServerResponse, head: string): void {
  let status = 200;
  for (const line of head.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10) || 500;
    else res.appendHeader(name, value);
  }
  res.writeHead(status);
}
