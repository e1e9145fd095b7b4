/**
 * `npm run bench:sync`: a device syncing a fleet repository of 10,000 manifests and 5,000 commits from
 * stock `git http-backend`, side by side with stock git on the same server:
 * - a poll where nothing moved (sync and verify; the fleet read is the cached one) against `git ls-remote`,
 *   and against one bare GET of the ref advertisement (the floor: the one request a poll makes);
 * - a one-file change, the whole way from poll to a resolved desired set (fetch, verify, incremental
 *   read, resolve), against `git fetch` alone: wall time and the bytes the server sent; by default and
 *   with thin packs (`fetch_thin`: fewer bytes, the pack completed locally).
 */
import * as fs from 'node:fs';
import { get } from 'node:http';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllowedSigners } from '../src/git/allowed-signers.js';
import type { GitRepo } from '../src/git/git-repo.js';
import { createHttpClient } from '../src/git/http-client.js';
import { pullFleet } from '../src/git/pull-fleet.js';
import { createFleetMemo } from '../src/git/read-fleet-at.js';
import { prepareRemote } from '../src/git/remote.js';
import { initSourceRepo } from '../src/git/sync-source.js';
import type { TrustPolicy } from '../src/git/verify-revision.js';
import { planDevice } from '../src/reconciler/plan-device.js';
import {
  commitFiles,
  gitAsync,
  makeSigningKey,
  publishBare,
  pushTo,
  writeAllowedSigners,
} from '../test/support/git-fixture.js';
import { startGitServer, type GitServer } from '../test/support/git-http-server.js';
import { benchShape, buildFleetRepo, fleetFiles } from './fleet-repo.js';
import { median, timed } from './measure.js';

const SEED = 20_240_601;
const POLLS = 15;
const CHANGES = 5;

function getBody(url: string): Promise<void> {
  return new Promise((resolve, reject) =>
    get(url, (res) =>
      res
        .on('data', () => undefined)
        .on('end', resolve)
        .on('error', reject),
    ).on('error', reject),
  );
}

function served(server: GitServer): { requests: number; bytes: number } {
  return { requests: server.requests.length, bytes: server.requests.reduce((n, r) => n + r.bytesSent, 0) };
}

const work = mkdtempSync(join(tmpdir(), 'gitfleet-bench-sync-'));
let server: GitServer | undefined;
try {
  const key = makeSigningKey(work, 'release');
  const allowedSignersPath = join(work, 'allowed_signers');
  writeAllowedSigners(allowedSignersPath, [key]);
  const source = join(work, 'source');
  const { files, devices } = fleetFiles(SEED);
  const t = performance.now();
  buildFleetRepo(source, files, benchShape.commits, key);
  const root = join(work, 'served');
  mkdirSync(root);
  const bare = publishBare(source, root, 'fleet');
  console.log(
    `repo: manifests=${files.size} commits=${benchShape.commits + 1} (built in ${((performance.now() - t) / 1000).toFixed(1)} s)`,
  );
  server = await startGitServer(root);
  const url = server.urlOf('fleet.git');

  const stock = join(work, 'stock.git');
  const trust: TrustPolicy = {
    allowedSigners: parseAllowedSigners(readFileSync(allowedSignersPath, 'utf8'), allowedSignersPath),
    policy: 'head',
    allowRollback: false,
    requireTimestamp: false,
    now: new Date(),
  };
  const device = devices[0];
  if (!device) throw new Error('no device');
  /** A device: its repository, its parse cache, and one pull as an agent pass makes it. */
  const makeDevice = async (name: string, thinPacks: boolean) => {
    const gitdir = join(work, `${name}.git`);
    const repo: GitRepo = { fs, dir: gitdir, gitdir, cache: {} };
    await initSourceRepo(repo);
    const memo = createFleetMemo();
    const http = createHttpClient();
    const pull = async () => {
      const remotes = [prepareRemote({ url })];
      const pulled = await pullFleet({ repo, http, remotes, branch: 'main', trust, memo, thinPacks });
      if (!pulled.fleet.result.ok)
        throw new Error(`bench fleet does not parse: ${pulled.fleet.result.errors[0]?.message}`);
      return pulled.fleet.result.value;
    };
    // The whole way from poll to the device's resolved desired set.
    const pass = async () => planDevice(await pull(), device.id, device.labels, []);
    return { pull, pass };
  };
  const { pull, pass } = await makeDevice('device', false);
  const thin = await makeDevice('device-thin', true);

  server.resetLog();
  const cloneStock = await timed(() => gitAsync(work, ['clone', '-q', '--bare', url, stock]));
  const cloneStockBytes = served(server).bytes;
  server.resetLog();
  const cloneOurs = await timed(pass);
  const cloneOursBytes = served(server).bytes;
  await thin.pass();
  console.log(
    `clone: gitfleet_s=${cloneOurs.toFixed(3)} git_s=${cloneStock.toFixed(3)} time_ratio=${(cloneOurs / cloneStock).toFixed(2)} bytes_ratio=${(cloneOursBytes / cloneStockBytes).toFixed(2)}`,
  );

  const lsRemote: number[] = [];
  const adverts: number[] = [];
  const polls: number[] = [];
  let pollRequests = 0;
  for (let i = 0; i < POLLS; i++) {
    lsRemote.push(await timed(() => gitAsync(work, ['ls-remote', url, 'refs/heads/main'])));
    // The floor: the one request a poll makes, as a bare in-process GET.
    adverts.push(await timed(() => getBody(`${url}/info/refs?service=git-upload-pack`)));
    server.resetLog();
    polls.push(await timed(pull));
    pollRequests = Math.max(pollRequests, served(server).requests);
  }
  console.log(
    `poll: requests=${pollRequests} ratio=${(median(polls) / median(lsRemote)).toFixed(3)} gitfleet_ms=${(median(polls) * 1000).toFixed(1)} ls_remote_ms=${(median(lsRemote) * 1000).toFixed(1)} one_get_ms=${(median(adverts) * 1000).toFixed(1)}`,
  );

  const fetchStock: number[] = [];
  const fetchOurs: number[] = [];
  const bytesStock: number[] = [];
  const bytesOurs: number[] = [];
  const fetchThin: number[] = [];
  const bytesThin: number[] = [];
  for (let i = 0; i < CHANGES; i++) {
    const changed = devices[(i * 7) % devices.length];
    const path = `devices/${changed?.labels.fleet}/${changed?.id}.yaml`;
    commitFiles(
      source,
      { [path]: `${files.get(path)}# changed in round ${i}\n` },
      { message: `round ${i}`, signingKey: key },
    );
    pushTo(source, bare, 'main');
    server.resetLog();
    fetchStock.push(await timed(() => gitAsync(stock, ['fetch', '-q', 'origin', '+main:main'])));
    bytesStock.push(served(server).bytes);
    server.resetLog();
    fetchOurs.push(await timed(pass));
    bytesOurs.push(served(server).bytes);
    server.resetLog();
    fetchThin.push(await timed(thin.pass));
    bytesThin.push(served(server).bytes);
  }
  console.log(
    `fetch: time_ratio=${(median(fetchOurs) / median(fetchStock)).toFixed(2)} bytes_ratio=${(median(bytesOurs) / median(bytesStock)).toFixed(2)} gitfleet_ms=${(median(fetchOurs) * 1000).toFixed(1)} git_fetch_ms=${(median(fetchStock) * 1000).toFixed(1)} gitfleet_bytes=${median(bytesOurs)} git_bytes=${median(bytesStock)}`,
  );
  console.log(
    `fetch_thin: time_ratio=${(median(fetchThin) / median(fetchStock)).toFixed(2)} bytes_ratio=${(median(bytesThin) / median(bytesStock)).toFixed(2)} gitfleet_ms=${(median(fetchThin) * 1000).toFixed(1)} gitfleet_bytes=${median(bytesThin)}`,
  );
} finally {
  await server?.close();
  rmSync(work, { recursive: true, force: true });
}
