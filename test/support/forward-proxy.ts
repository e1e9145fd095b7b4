import { createServer, request } from 'node:http';
import { listenOnLoopback, stopListening } from './loopback-listener.js';

export interface ForwardProxy {
  url: string;
  /** The absolute URLs it forwarded, in order. */
  seen: string[];
  close(): Promise<void>;
}

/** A plain HTTP forward proxy on loopback (absolute-URI requests), recording what it forwards. */
export async function startForwardProxy(): Promise<ForwardProxy> {
  const seen: string[] = [];
  const proxy = createServer((req, res) => {
    seen.push(req.url ?? '');
    const upstream = request(req.url ?? '', { method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.writeHead(502).end());
    req.pipe(upstream);
  });
  const port = await listenOnLoopback(proxy, 0);
  return { url: `http://127.0.0.1:${port}`, seen, close: () => stopListening(proxy) };
}

/** Runs `run` with `env` set in process.env (proxy settings are read from there), then restores it. */
export async function withEnv(env: Record<string, string>, run: () => Promise<void>): Promise<void> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    await run();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}
