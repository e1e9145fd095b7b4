/**
 * `node dist-bench/bench/fetch-once.js URL SHA256 SIZE CACHE_DIR`: one `fetchArtifact` into CACHE_DIR,
 * in a process of its own so that its peak memory is the download's. Prints one JSON line:
 * `{"seconds", "bodySeconds", "hwmBytes"}`: the call alone (no node start-up, no module loading); until
 * the last byte was stored (the rest is the final check, fsync and rename into the cache); the process's
 * peak resident set (VmHWM) at the end.
 */
import { readFileSync } from 'node:fs';
import { fetchArtifact } from '../src/agent/fetch-artifact.js';

const [url, sha256, size, cacheDir] = process.argv.slice(2);
if (!url || !sha256 || !size || !cacheDir) throw new Error('usage: fetch-once URL SHA256 SIZE CACHE_DIR');

const start = performance.now();
let bodyDone = 0;
await fetchArtifact({
  artifact: { url, sha256, size: Number(size) },
  mirrors: [],
  cacheDir,
  onProgress: ({ stored }) => {
    if (stored === Number(size) && bodyDone === 0) bodyDone = performance.now();
  },
});
const end = performance.now();
const hwm = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
const hwmBytes = hwm === undefined ? process.resourceUsage().maxRSS * 1024 : Number(hwm) * 1024;
console.log(
  JSON.stringify({
    seconds: (end - start) / 1000,
    bodySeconds: ((bodyDone || end) - start) / 1000,
    hwmBytes,
  }),
);
