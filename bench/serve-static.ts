/**
 * `node dist-bench/bench/serve-static.js ROOT`: a tiny static file server on loopback for the download
 * bench, meant to run in its own process so that serving does not share the measured process's CPU.
 * Prints `{"url":"http://127.0.0.1:PORT"}` on one line once listening; serves GET/HEAD of files below
 * ROOT (200 with Content-Length, no ranges: the bench downloads into a fresh cache) until killed.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, normalize, sep } from 'node:path';

const root = process.argv[2];
if (!root) throw new Error('usage: serve-static ROOT');

async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = decodeURIComponent(new URL(req.url ?? '/', 'http://127.0.0.1').pathname);
  const file = join(root!, normalize(path));
  const info = await stat(file).catch(() => undefined);
  if (!file.startsWith(root + sep) || !info?.isFile()) {
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found\n');
    return;
  }
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': info.size });
  if (req.method === 'HEAD') res.end();
  // Large reads: the server should not be what limits a loopback download.
  else createReadStream(file, { highWaterMark: 1 << 20 }).pipe(res);
}

const server = createServer((req, res) => {
  serve(req, res).catch(() => res.destroy());
});
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  console.log(JSON.stringify({ url: `http://127.0.0.1:${port}` }));
});
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
