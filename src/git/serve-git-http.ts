import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { listenOnLoopback, stopListening, type LoopbackServer } from './listen-on-loopback.js';

/** Ways to watch or alter one response of http-backend (request logs and fault injection in tests). */
export interface BackendResponseHooks {
  /** Called with the length of every response body chunk as it is written (headers not counted). */
  onBodyBytes?: (bytes: number) => void;
  /** When given, the whole body is held until http-backend exits and this decides what is sent. */
  rewriteBody?: (body: Buffer) => Buffer;
}

/**
 * Stock `git http-backend` as a CGI program for the repositories below `root`: every repository is
 * exported (`GIT_HTTP_EXPORT_ALL`) and accepts pushes (`http.receivepack=true`), so devices can push their
 * state refs. It is meant for loopback servers (the demo, tests): there is no authentication.
 */
export class GitHttpBackend {
  private readonly children = new Map<ChildProcess, Promise<void>>();

  constructor(readonly root: string) {}

  /**
   * Answers one request: the request body is streamed into http-backend, its CGI headers become the
   * response's status and headers and its output is streamed back with backpressure. The child is killed
   * when the client goes away.
   */
  handle(req: IncomingMessage, res: ServerResponse, hooks: BackendResponseHooks = {}): void {
    const env = this.cgiEnv(req);
    if (!env) {
      req.resume();
      res.writeHead(400, { 'Content-Type': 'text/plain' });
      res.end('malformed request path\n');
      return;
    }
    const child = spawn('git', ['http-backend'], { env, stdio: 'pipe' });
    this.children.set(child, new Promise((resolve) => child.once('close', () => resolve())));
    child.once('close', () => this.children.delete(child));
    // http-backend may exit without reading the body (errors, GET): the resulting EPIPE is expected.
    child.stdin.on('error', () => undefined);
    req.pipe(child.stdin);
    res.once('close', () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });

    let head: Buffer | undefined = Buffer.alloc(0);
    const held: Buffer[] = [];
    const stderr: Buffer[] = [];
    const send = (chunk: Buffer): void => {
      if (hooks.rewriteBody) {
        held.push(chunk);
        return;
      }
      hooks.onBodyBytes?.(chunk.length);
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
      if (hooks.rewriteBody) {
        const body = hooks.rewriteBody(Buffer.concat(held));
        hooks.onBodyBytes?.(body.length);
        res.end(body);
        return;
      }
      res.end();
    });
  }

  /** Kills every running http-backend (and so the upload-pack or receive-pack it runs) and waits for them. */
  async killAll(): Promise<void> {
    for (const child of this.children.keys()) child.kill('SIGKILL');
    await Promise.all(this.children.values());
  }

  /** The CGI environment, built from scratch so nothing of ours (GIT_DIR, credentials) leaks into git. */
  private cgiEnv(req: IncomingMessage): NodeJS.ProcessEnv | undefined {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    let pathInfo: string;
    try {
      pathInfo = decodeURIComponent(url.pathname);
    } catch {
      return undefined;
    }
    if (pathInfo.includes('\0')) return undefined;
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
      REQUEST_METHOD: req.method ?? 'GET',
      PATH_INFO: pathInfo,
      QUERY_STRING: url.search.slice(1),
      REMOTE_ADDR: req.socket.remoteAddress ?? '127.0.0.1',
      ...optional('CONTENT_TYPE', req.headers['content-type']),
      ...optional('CONTENT_LENGTH', req.headers['content-length']),
      ...optional('GIT_PROTOCOL', req.headers['git-protocol']),
      ...optional('HTTP_CONTENT_ENCODING', req.headers['content-encoding']),
    };
  }
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

/**
 * Serves every git repository below `root` over smart HTTP on 127.0.0.1 with stock `git http-backend`
 * (clone, fetch and push; no authentication): `${url}/fleet.git` is `<root>/fleet.git`. `port` 0 (the
 * default) picks a free port. `close()` destroys open connections and kills running git processes.
 */
export async function serveGitHttp(root: string, options: { port?: number } = {}): Promise<LoopbackServer> {
  const backend = new GitHttpBackend(root);
  const server = createServer((req, res) => backend.handle(req, res));
  const port = await listenOnLoopback(server, options.port ?? 0);
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      await stopListening(server);
      await backend.killAll();
    },
  };
}
