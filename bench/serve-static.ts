/**
 * `node dist-bench/bench/serve-static.js ROOT`: the artifact server (`serveArtifacts`) in a process of its
 * own, so that serving does not share the measured process's CPU. Prints `{"url":"http://127.0.0.1:PORT"}`
 * on one line once listening, and serves until SIGTERM.
 */
import { serveArtifacts } from '../src/agent/serve-artifacts.js';

const root = process.argv[2];
if (!root) throw new Error('usage: serve-static ROOT');
const server = await serveArtifacts(root);
console.log(JSON.stringify({ url: server.url }));
process.on('SIGTERM', () => {
  void server.close().then(() => process.exit(0));
});
