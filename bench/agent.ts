/**
 * `npm run bench:agent`: the device agent against stock tools doing the same work.
 * - download: `fetchArtifact` of a 1 GiB artifact into a fresh content-addressed cache (streamed through
 *   sha256 to disk, fsynced, renamed), in a child process so its peak memory can be read, against
 *   `curl -s URL | sha256sum`; both from a static server in another process on loopback. Throughput in
 *   MiB/s (fetchArtifact's is the call alone, without node start-up); `rss_mb` is the child's peak
 *   (VmHWM), the highest of the runs.
 * - start: `agent run` (loop mode) from spawn to its first request, against `node -e 0` from spawn to exit;
 *   and its resident memory once idle after the first pass, against an idle `node` process.
 * - noop: `agent run --once` on a device already converged on a one-packet fleet, process start to exit,
 *   against `ansible-pull -o` (a pull that sees no change and runs nothing) on the same repository.
 * Needs `npm run build` first (the agent runs as `node bin/run.js`).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { addPacket } from '../src/agent/add-packet.js';
import {
  initFleetRepo,
  makeSigningKey,
  publishBare,
  writeAllowedSigners,
} from '../test/support/git-fixture.js';
import { startGitServer, type GitServer } from '../test/support/git-http-server.js';
import { startArtifactServer, type ArtifactServer } from '../test/support/artifact-server.js';
import { median } from './measure.js';

const SEED = 20_240_601;
const DOWNLOAD_BYTES = 1 << 30;
const DOWNLOAD_RUNS = 3;
const START_RUNS = 5;
const NOOP_RUNS = 5;
const MiB = 1 << 20;

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
/** The repository's root, from `dist-bench/bench/`. */
const repoRoot = here('../../');
const runJs = join(repoRoot, 'bin', 'run.js');
const node = process.execPath;

const fixed = (value: number, digits = 2) => value.toFixed(digits);

interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
  /** From just before spawn to the exit event. */
  seconds: number;
}

/** Runs a process to its end (killed after `timeoutMs`), capturing its output. */
function run(
  command: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(command, args, {
      cwd: options.cwd ?? repoRoot,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
    child.once('error', reject);
    child.once('exit', (code) => {
      const seconds = (performance.now() - start) / 1000;
      clearTimeout(timer);
      // Output may still be in flight after 'exit': wait for the streams to close.
      child.once('close', () => resolve({ code, stdout, stderr, seconds }));
    });
  });
}

/** A field of /proc/PID/status in bytes (VmRSS, VmHWM), or undefined when the process is gone. */
function procStatusBytes(pid: number, field: 'VmRSS' | 'VmHWM'): number | undefined {
  try {
    const value = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(
      readFileSync(`/proc/${pid}/status`, 'utf8'),
    )?.[1];
    return value === undefined ? undefined : Number(value) * 1024;
  } catch {
    return undefined;
  }
}

function killAndWait(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The last lines of a process's output, for a failure message. */
function tail(text: string, lines = 5): string {
  return text.trim().split('\n').slice(-lines).join(' | ');
}

/** Seeded pseudo-random bytes (AES-128-CTR over zeros: fast and reproducible) written to `path`. */
async function writeSeededFile(path: string, bytes: number, seed: number): Promise<string> {
  const key = createHash('sha256').update(`gitfleet-bench-${seed}`).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  const hash = createHash('sha256');
  const zeros = Buffer.alloc(4 * MiB);
  await pipeline(function* () {
    for (let left = bytes; left > 0; left -= zeros.length) {
      const chunk = cipher.update(zeros.subarray(0, Math.min(left, zeros.length)));
      hash.update(chunk);
      yield chunk;
    }
  }, createWriteStream(path));
  // On disk before anything is timed: no writeback of it running under the first download.
  const handle = await open(path, 'r');
  await handle.sync().finally(() => handle.close());
  return hash.digest('hex');
}

/** What `fetch-once.js` prints. */
interface FetchOnceResult {
  seconds: number;
  bodySeconds: number;
  hwmBytes: number;
}

/** Starts `serve-static.js ROOT` in its own process and resolves with its URL once it listens. */
function startStaticServer(root: string): Promise<{ url: string; child: ChildProcess }> {
  return new Promise((resolve, reject) => {
    const child = spawn(node, [here('./serve-static.js'), root], { stdio: ['ignore', 'pipe', 'inherit'] });
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`the static server exited (${code})`)));
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      out += text;
      const line = out.split('\n')[0];
      if (out.includes('\n') && line) resolve({ url: (JSON.parse(line) as { url: string }).url, child });
    });
  });
}

async function benchDownload(work: string): Promise<void> {
  const served = join(work, 'served');
  mkdirSync(served);
  const file = join(served, 'payload.bin');
  let t = performance.now();
  const sha256 = await writeSeededFile(file, DOWNLOAD_BYTES, SEED);
  console.log(
    `download_setup: size_mib=${DOWNLOAD_BYTES / MiB} written_s=${fixed((performance.now() - t) / 1000)}`,
  );
  const server = await startStaticServer(served);
  try {
    const url = `${server.url}/payload.bin`;
    const cacheDir = join(work, 'cache');
    const fetchOnce = async (name: string, hex: string, size: number) => {
      rmSync(cacheDir, { recursive: true, force: true });
      const args = [here('./fetch-once.js'), `${server.url}/${name}`, hex, String(size), cacheDir];
      const done = await run(node, args);
      if (done.code !== 0) throw new Error(`fetchArtifact failed: ${tail(done.stderr)}`);
      const result = JSON.parse(done.stdout.trim().split('\n').at(-1) ?? '{}') as FetchOnceResult;
      rmSync(cacheDir, { recursive: true, force: true });
      return { ...result, processSeconds: done.seconds };
    };
    const gitfleet = () => fetchOnce('payload.bin', sha256, DOWNLOAD_BYTES);
    // The same process fetching 1 KiB: node, got and the agent's modules, without a download in flight.
    const tiny = Buffer.alloc(1024, 0x61);
    writeFileSync(join(served, 'tiny.bin'), tiny);
    const baseline = await fetchOnce(
      'tiny.bin',
      createHash('sha256').update(tiny).digest('hex'),
      tiny.length,
    );
    const shell = async (pipelineText: string) => {
      const done = await run('bash', ['-o', 'pipefail', '-c', pipelineText, 'bench', url]);
      if (done.code !== 0 || !done.stdout.startsWith(sha256))
        throw new Error(`\`${pipelineText}\` failed or hashed otherwise: ${tail(done.stdout + done.stderr)}`);
      return done.seconds;
    };
    const curl = () => shell('/usr/bin/curl -sS --fail "$1" | sha256sum');
    // Not the peer, a hint: what writing the bytes to disk (as the cache must) costs the stock tools.
    const stockFile = join(work, 'curl-copy.bin');
    const curlDisk = async () => {
      const seconds = await shell(
        `/usr/bin/curl -sS --fail "$1" | tee '${stockFile}' | sha256sum && sync '${stockFile}'`,
      );
      rmSync(stockFile, { force: true });
      return seconds;
    };

    const ours: (FetchOnceResult & { processSeconds: number })[] = [];
    const stock: number[] = [];
    const stockDisk: number[] = [];
    for (let i = 0; i < DOWNLOAD_RUNS; i++) {
      // Alternate which goes first, so neither always meets a warmer or cooler machine.
      if (i % 2 === 0) {
        ours.push(await gitfleet());
        stock.push(await curl());
      } else {
        stock.push(await curl());
        ours.push(await gitfleet());
      }
      stockDisk.push(await curlDisk());
      const last = ours.at(-1)!;
      console.log(
        `download_run ${i + 1}: gitfleet_s=${fixed(last.seconds)} gitfleet_body_s=${fixed(last.bodySeconds)} gitfleet_process_s=${fixed(last.processSeconds)} curl_s=${fixed(stock.at(-1)!)} curl_tee_disk_s=${fixed(stockDisk.at(-1)!)} rss_mb=${fixed(last.hwmBytes / MiB, 1)}`,
      );
    }
    t = median(ours.map((o) => o.seconds));
    const oursMbS = DOWNLOAD_BYTES / MiB / t;
    const stockMbS = DOWNLOAD_BYTES / MiB / median(stock);
    const processMbS = DOWNLOAD_BYTES / MiB / median(ours.map((o) => o.processSeconds));
    const diskMbS = DOWNLOAD_BYTES / MiB / median(stockDisk);
    const commitS = median(ours.map((o) => o.seconds - o.bodySeconds));
    console.log(
      `download_detail: gitfleet_process_mb_s=${fixed(processMbS, 1)} (with node start-up) gitfleet_fsync_rename_s=${fixed(commitS)} curl_tee_disk_mb_s=${fixed(diskMbS, 1)} (curl | tee FILE | sha256sum; sync FILE) rss_tiny_fetch_mb=${fixed(baseline.hwmBytes / MiB, 1)}`,
    );
    console.log(
      `download: ratio=${fixed(oursMbS / stockMbS)} gitfleet_mb_s=${fixed(oursMbS, 1)} curl_mb_s=${fixed(stockMbS, 1)} rss_mb=${fixed(Math.max(...ours.map((o) => o.hwmBytes)) / MiB, 1)} size_mb=${DOWNLOAD_BYTES / MiB} runs=${DOWNLOAD_RUNS}`,
    );
  } finally {
    await killAndWait(server.child);
    rmSync(served, { recursive: true, force: true });
  }
}

/** Whether `npm run build` has built the agent's loop. */
function agentBuilt(): boolean {
  return existsSync(join(repoRoot, 'dist', 'cli', 'commands', 'agent', 'run.js'));
}

/** `gitfleet agent init` into `dir`, state and root below it; returns agent.yaml and the public key line. */
async function initDevice(
  dir: string,
  id: string,
  remote: string,
  labels: Record<string, string>,
): Promise<{ config: string; publicKey: string }> {
  const done = await run(node, [
    runJs,
    'agent',
    'init',
    '--dir',
    dir,
    '--id',
    id,
    '--remote',
    remote,
    '--state-dir',
    join(dir, 'state'),
    '--root-dir',
    join(dir, 'root'),
    ...Object.entries(labels).flatMap(([k, v]) => ['--label', `${k}=${v}`]),
  ]);
  if (done.code !== 0) throw new Error(`agent init failed: ${tail(done.stderr)}`);
  return {
    config: join(dir, 'agent.yaml'),
    publicKey: readFileSync(join(dir, 'device_ed25519.pub'), 'utf8').trim(),
  };
}

async function benchStart(work: string): Promise<void> {
  if (!agentBuilt()) {
    console.log('start: skipped (agent run is not built: npm run build)');
    return;
  }
  // Answers 404 to everything; notes when requests arrive.
  let firstRequest: ((at: number) => void) | undefined;
  let lastRequestAt = 0;
  let requests = 0;
  const server: Server = createServer((req, res) => {
    const at = performance.now();
    lastRequestAt = at;
    requests += 1;
    firstRequest?.(at);
    firstRequest = undefined;
    req.resume();
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/fleet.git`;
    const dir = join(work, 'start');
    const signer = makeSigningKey(work, 'start-signer');
    const { config } = await initDevice(dir, 'bench-start', url, { fleet: 'bench' });
    writeAllowedSigners(join(dir, 'allowed_signers'), [signer]);

    const toFirst: number[] = [];
    const nodeExit: number[] = [];
    const agentRss: number[] = [];
    const idleRss: number[] = [];
    const passRequests: number[] = [];
    for (let i = 0; i < START_RUNS; i++) {
      nodeExit.push((await run(node, ['-e', '0'])).seconds);

      requests = 0;
      let stderr = '';
      const arrived = new Promise<number>((resolve) => (firstRequest = resolve));
      const start = performance.now();
      const agent = spawn(node, [runJs, 'agent', 'run', '--config', config], {
        cwd: dir,
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      agent.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
      const exited = new Promise<string>((resolve) =>
        agent.once('exit', (code, signal) =>
          resolve(`the agent exited (${code ?? signal}): ${tail(stderr)}`),
        ),
      );
      try {
        const first = await Promise.race([arrived, exited, sleep(30_000).then(() => 'no request in 30 s')]);
        if (typeof first === 'string') throw new Error(first);
        toFirst.push((first - start) / 1000);
        // The first pass is over when the agent has been quiet for 2 s (it then sleeps until its next poll).
        const deadline = performance.now() + 30_000;
        while (performance.now() - lastRequestAt < 2000 && performance.now() < deadline) await sleep(200);
        const rss = procStatusBytes(agent.pid!, 'VmRSS');
        if (rss === undefined) throw new Error(await exited);
        agentRss.push(rss);
        passRequests.push(requests);
      } finally {
        await killAndWait(agent);
      }

      const idle = spawn(node, ['-e', 'setInterval(()=>{}, 1e6)'], { stdio: 'ignore' });
      try {
        await sleep(1000);
        idleRss.push(procStatusBytes(idle.pid!, 'VmRSS') ?? NaN);
      } finally {
        await killAndWait(idle);
      }
    }
    const extraMs = (median(toFirst) - median(nodeExit)) * 1000;
    const extraRss = (median(agentRss) - median(idleRss)) / MiB;
    console.log(
      `start_detail: runs=${START_RUNS} first_pass_requests=${median(passRequests)} agent_idle_rss_mb=${fixed(median(agentRss) / MiB, 1)} node_idle_rss_mb=${fixed(median(idleRss) / MiB, 1)}`,
    );
    console.log(
      `start: extra_ms=${Math.round(extraMs)} extra_rss_mb=${fixed(extraRss, 1)} agent_first_request_ms=${Math.round(median(toFirst) * 1000)} node_e0_ms=${Math.round(median(nodeExit) * 1000)}`,
    );
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

const DEVICE = 'bench-0001';
const PLAYBOOK = 'local.yml';

/** The fleet: one packet (a small artifact), one spec for `fleet=bench`, the device's record; signed. */
async function buildBenchFleet(
  work: string,
  opts: { mirror: string; artifactsDir: string; publicKey: string; playbook: boolean },
) {
  const src = join(work, 'fleet-src');
  mkdirSync(src);
  const signer = makeSigningKey(work, 'release');
  writeFileSync(
    join(src, 'fleet.yaml'),
    `kind: Fleet\nversion: 1\nartifacts:\n  mirrors:\n    - ${opts.mirror}\n`,
  );
  const packetSrc = join(work, 'packet-src');
  mkdirSync(join(packetSrc, 'bin'), { recursive: true });
  writeFileSync(join(packetSrc, 'bin', 'hello'), '#!/bin/sh\necho hello\n', { mode: 0o755 });
  writeFileSync(join(packetSrc, 'README'), 'A packet for the agent bench.\n');
  await addPacket({
    srcDir: packetSrc,
    fleetDir: src,
    artifactsDir: opts.artifactsDir,
    name: 'hello',
    labels: ['version=1.0.0'],
  });
  const files: Record<string, string> = {
    'specs/bench.yaml': `kind: Spec\nid: bench\ntarget: { fleet: bench }\napps:\n  - name: hello\n    version: '^1'\n`,
    [`devices/${DEVICE}.yaml`]: `kind: Device\nid: ${DEVICE}\nlabels: { fleet: bench }\npublicKey: ${opts.publicKey}\n`,
  };
  if (opts.playbook) {
    files[PLAYBOOK] =
      '- hosts: localhost\n  connection: local\n  gather_facts: false\n  tasks:\n    - debug: { msg: converged }\n';
  }
  initFleetRepo(src, { files, signingKey: signer });
  return { src, signer };
}

async function benchNoop(work: string): Promise<void> {
  const ansible = spawnSync('sh', ['-c', 'command -v ansible-pull'], { encoding: 'utf8' }).stdout.trim();
  if (!agentBuilt()) {
    console.log('noop: skipped (agent run is not built: npm run build)');
    return;
  }
  const root = join(work, 'git');
  mkdirSync(root);
  const artifactsDir = join(work, 'artifacts');
  mkdirSync(artifactsDir);
  let git: GitServer | undefined;
  let artifacts: ArtifactServer | undefined;
  try {
    git = await startGitServer(root);
    artifacts = await startArtifactServer(artifactsDir);
    const url = git.urlOf('fleet.git');
    const dir = join(work, 'device');
    const device = await initDevice(dir, DEVICE, url, { fleet: 'bench' });
    const { src, signer } = await buildBenchFleet(work, {
      mirror: `${artifacts.url}/`,
      artifactsDir,
      publicKey: device.publicKey,
      playbook: ansible !== '',
    });
    writeAllowedSigners(join(dir, 'allowed_signers'), [signer]);
    publishBare(src, root, 'fleet');

    const once = async () => {
      const done = await run(node, [runJs, 'agent', 'run', '--config', device.config, '--once', '--json'], {
        cwd: dir,
      });
      if (done.code !== 0) throw new Error(`agent run --once failed: ${tail(done.stdout + done.stderr)}`);
      const report = JSON.parse(done.stdout) as { result: string; actions: unknown[] };
      return { ...done, actions: report.actions.length };
    };
    const converge = await once();
    const downloads = artifacts.requests.length;
    if (converge.actions === 0 || downloads === 0)
      throw new Error('the converging pass installed nothing: the no-change passes would prove nothing');

    const pullDir = join(work, 'ansible-pull');
    const pull = () =>
      run(ansible, ['-o', '-U', url, '-d', pullDir, '-i', 'localhost,', PLAYBOOK], {
        cwd: work,
        env: { ...process.env, ANSIBLE_LOCALHOST_WARNING: 'false', ANSIBLE_NOCOLOR: '1' },
      });
    let pullFirst: Finished | undefined;
    if (ansible) {
      pullFirst = await pull();
      if (pullFirst.code !== 0)
        throw new Error(`ansible-pull failed: ${tail(pullFirst.stdout + pullFirst.stderr)}`);
    }

    const agentRuns: number[] = [];
    const pullRuns: number[] = [];
    let noopRequests = 0;
    let pushes = 0;
    let pullNoops = 0;
    for (let i = 0; i < NOOP_RUNS; i++) {
      git.resetLog();
      artifacts.resetLog();
      const noop = await once();
      if (noop.actions !== 0) throw new Error(`a no-change pass planned ${noop.actions} action(s)`);
      agentRuns.push(noop.seconds);
      noopRequests = Math.max(noopRequests, git.requests.length + artifacts.requests.length);
      pushes += git.requests.filter((r) => r.path.endsWith('git-receive-pack')).length;
      if (ansible) {
        const again = await pull();
        if (again.code !== 0) throw new Error(`ansible-pull failed: ${tail(again.stdout + again.stderr)}`);
        pullRuns.push(again.seconds);
        if (again.stdout.includes('Repository has not changed')) pullNoops += 1;
      }
    }
    const agentS = median(agentRuns);
    console.log(
      `noop_detail: converge_s=${fixed(converge.seconds)} converge_actions=${converge.actions} converge_artifact_requests=${downloads} noop_requests=${noopRequests} noop_pushes=${pushes}${pullFirst ? ` ansible_first_pull_s=${fixed(pullFirst.seconds)} ansible_saw_no_change=${pullNoops}/${NOOP_RUNS}` : ''}`,
    );
    if (!ansible) {
      console.log(`noop: skipped (ansible-pull not installed) agent_s=${fixed(agentS, 3)} runs=${NOOP_RUNS}`);
      return;
    }
    const pullS = median(pullRuns);
    console.log(
      `noop: ratio=${fixed(agentS / pullS)} agent_s=${fixed(agentS, 3)} ansible_pull_s=${fixed(pullS, 3)} runs=${NOOP_RUNS}`,
    );
  } finally {
    await git?.close();
    await artifacts?.close();
  }
}

// `node dist-bench/bench/agent.js start noop` runs only those parts.
const only = process.argv.slice(2);
const work = mkdtempSync(join(tmpdir(), 'gitfleet-bench-agent-'));
try {
  for (const [name, part] of [
    ['download', benchDownload],
    ['start', benchStart],
    ['noop', benchNoop],
  ] as const) {
    if (only.length > 0 && !only.includes(name)) continue;
    try {
      await part(work);
    } catch (error) {
      console.log(`${name}: failed (${error instanceof Error ? error.message : String(error)})`);
      process.exitCode = 1;
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
