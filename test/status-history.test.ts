import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRepo } from '../src/git/git-repo.js';
import { createHttpClient } from '../src/git/http-client.js';
import { readDeviceHistory } from '../src/git/read-device-history.js';
import { readDeviceStates, type DeviceStateRow } from '../src/git/read-device-states.js';
import { formatDeviceStatus, type Condition, type DeviceStatus } from '../src/schema/device-status.js';
import { recordState, stateRef } from '../src/git/record-state.js';
import { parseSshPrivateKey } from '../src/git/ssh-key.js';
import { GitfleetError } from '../src/schema/gitfleet-error.js';
import { makeLabels } from '../src/schema/labels.js';
import { exampleFiles } from './support/example-files.js';
import {
  commitFiles,
  git,
  initFleetRepo,
  makeSigningKey,
  writeAllowedSigners,
  type SigningKey,
} from './support/git-fixture.js';
import { ensureBuilt, runCli, runCliJson } from './support/run-cli.js';

let work: string;
let dir: string;
let allowedSigners: string;
/** Source commits on main, oldest first: c1..c3 signed by the release key, c4 unsigned. */
const c: string[] = [];
const keys: Record<string, SigningKey> = {};
const ready: Condition = { type: 'Ready', status: 'True', reason: 'Converged', message: '' };
const stalled: Condition[] = [
  { type: 'Ready', status: 'False', reason: 'HookFailed', message: 'install.sh exited 1' },
  { type: 'Stalled', status: 'True', reason: 'HookFailed', message: 'install.sh exited 1' },
];

function status(
  device: string,
  observedRevision: string,
  conditions = [ready],
  errors: DeviceStatus['errors'] = [],
) {
  return {
    device,
    labels: makeLabels([['fleet', 'alpha']]),
    observedRevision,
    conditions,
    packets: [],
    errors,
  };
}

/** A real signed state commit, as the agent makes it. */
async function record(device: string, key: SigningKey, state: DeviceStatus, at: string, repoDir = dir) {
  const target = {
    repo: await openRepo(repoDir),
    http: createHttpClient(),
    remote: undefined,
    deviceId: device,
    key: parseSshPrivateKey(readFileSync(key.privatePath, 'utf8')),
    now: new Date(at),
  };
  return (await recordState(target, state)).commit;
}

/** An unsigned state commit holding `content` as status.yaml, made with stock git plumbing. */
function recordWithGit(device: string, content: string, parent?: string): string {
  const file = join(work, `${device}.status`);
  writeFileSync(file, content);
  const blob = git(dir, ['hash-object', '-w', file]);
  const env = { GIT_INDEX_FILE: join(work, `${device}.index`) };
  git(dir, ['update-index', '--add', '--cacheinfo', `100644,${blob},status.yaml`], { env });
  const tree = git(dir, ['write-tree'], { env });
  const commit = git(dir, ['commit-tree', tree, ...(parent ? ['-p', parent] : []), '-m', 'state'], {
    date: '1767225600 +0000', // 2026-01-01T00:00:00Z
  });
  git(dir, ['update-ref', stateRef(device), commit]);
  return commit;
}

function withKey(file: string, key: SigningKey): string {
  return `${file.trimEnd()}\npublicKey: "${key.publicKey}"\n`;
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'gitfleet-status-'));
  dir = join(work, 'fleet');
  for (const name of ['release', 'pi-0042', 'pi-0043', 'pi-0044', 'pi-0047', 'intruder', 'ghost']) {
    keys[name] = makeSigningKey(work, name);
  }
  allowedSigners = join(work, 'allowed_signers');
  writeAllowedSigners(allowedSigners, [keys.release!]);
  const files = exampleFiles();
  for (const id of ['pi-0042', 'pi-0043', 'pi-0044', 'pi-0047']) {
    const path = `devices/${id}.yaml`;
    files[path] = withKey(files[path]!, keys[id]!);
  }
  const release = keys.release!;
  c.push(initFleetRepo(dir, { files, signingKey: release }));
  c.push(commitFiles(dir, { 'notes/one.txt': '1' }, { message: 'Second change', signingKey: release }));
  c.push(commitFiles(dir, { 'notes/two.txt': '2' }, { message: 'Third change', signingKey: release }));
  c.push(commitFiles(dir, { 'notes/three.txt': '3' }, { message: 'Unsigned change' }));

  // pi-0042 converged to c1, c2 and c3 in turn.
  for (const [i, at] of ['2026-11-20T10:00:00Z', '2026-11-21T10:00:00Z', '2026-11-22T10:00:00Z'].entries()) {
    await record('pi-0042', keys['pi-0042']!, status('pi-0042', c[i]!), at);
  }
  await record(
    'pi-0043',
    keys['pi-0043']!,
    status('pi-0043', c[3]!, stalled, [
      { code: 'hook_failed', message: 'install.sh exited 1', packet: 'logger' },
    ]),
    '2026-11-23T10:00:00Z',
  );
  // Hostile: signed with another key, naming a revision the repository does not hold.
  await record('pi-0044', keys.intruder!, status('pi-0044', 'f'.repeat(40)), '2026-11-23T11:00:00Z');
  recordWithGit('pi-0047', formatDeviceStatus(status('pi-0047', c[1]!)));
  recordWithGit('gw-0007', 'device: [unclosed\n\u0000garbage');
  recordWithGit('nuc-0001', `device: nuc-0001\n# ${'x'.repeat(5 * 1024 * 1024)}\n`);
  await record('ghost-0001', keys.ghost!, status('ghost-0001', c[3]!), '2026-11-23T12:00:00Z');
  // Hostile: a state ref naming a blob, not a commit.
  git(dir, ['update-ref', stateRef('blob-0001'), git(dir, ['rev-parse', `${c[0]}:fleet.yaml`])]);
  // pi-0100 has a record and never reported.
  ensureBuilt();
});

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

function rowOf(rows: readonly DeviceStateRow[], device: string): DeviceStateRow {
  const row = rows.find((r) => r.device === device);
  if (!row) throw new Error(`no row for ${device}`);
  return row;
}

describe('readDeviceStates', () => {
  it('lists every state ref and every record, sorted, with state, behind and last seen', async () => {
    const states = await readDeviceStates(dir);
    expect(states.commit).toBe(c[3]);
    expect(states.devices.map((d) => d.device)).toEqual([
      'blob-0001',
      'ghost-0001',
      'gw-0007',
      'nuc-0001',
      'pi-0042',
      'pi-0043',
      'pi-0044',
      'pi-0047',
      'pi-0100',
    ]);
    const rows = states.devices;
    expect(rowOf(rows, 'pi-0042')).toMatchObject({
      state: 'Ready',
      summary: 'Ready: Converged',
      observedRevision: c[2],
      behind: 1,
      errors: [],
      lastSeen: '2026-11-22T10:00:00Z',
      signature: { verified: true, fingerprint: expect.stringMatching(/^SHA256:/) as unknown },
    });
    expect(rowOf(rows, 'pi-0043')).toMatchObject({
      state: 'Stalled',
      summary: 'Stalled: HookFailed',
      behind: 0,
      errors: ['hook_failed'],
      signature: { verified: true },
    });
    expect(rowOf(rows, 'pi-0047')).toMatchObject({ state: 'Ready', behind: 2 });
    expect(rowOf(rows, 'pi-0100')).toMatchObject({
      reported: false,
      hasRecord: true,
      state: 'Unknown',
      summary: 'never reported',
      signature: undefined,
      lastSeen: undefined,
    });
  });

  it('counts behind exactly as git rev-list --count does', async () => {
    const states = await readDeviceStates(dir);
    const counted = states.devices.filter(
      (row) => row.observedRevision !== undefined && row.behind !== undefined,
    );
    expect(counted.map((row) => row.device)).toEqual(['ghost-0001', 'pi-0042', 'pi-0043', 'pi-0047']);
    for (const row of counted) {
      expect(row.behind).toBe(Number(git(dir, ['rev-list', '--count', `${row.observedRevision}..main`])));
    }
    // The same rows against an older revision: c4 is then one commit ahead, and pi-0043 behind nothing.
    const older = await readDeviceStates(dir, { rev: c[2]! });
    expect(rowOf(older.devices, 'pi-0043').behind).toBe(0);
    expect(rowOf(older.devices, 'pi-0047').behind).toBe(1);
  });

  it('counts behind across merges and side branches, whatever the commit dates say', async () => {
    const merged = join(work, 'merged');
    const at = (day: number) => ({ date: `2024-01-${String(day).padStart(2, '0')}T00:00:00Z` });
    const a = initFleetRepo(merged, { files: { 'fleet.yaml': 'kind: Fleet\n' } });
    git(merged, ['checkout', '-q', '-b', 'side']);
    const s1 = commitFiles(merged, { s1: '1' }, { message: 's1', ...at(20) });
    const s2 = commitFiles(merged, { s2: '2' }, { message: 's2', ...at(2) });
    git(merged, ['checkout', '-q', 'main']);
    const b = commitFiles(merged, { b: 'b' }, { message: 'b', ...at(25) });
    git(merged, ['checkout', '-q', '-b', 'other']);
    const o1 = commitFiles(merged, { o1: 'o' }, { message: 'o1', ...at(3) });
    git(merged, ['checkout', '-q', 'main']);
    git(merged, ['merge', '-q', '--no-ff', '-m', 'Merge side', 'side'], at(4));
    const m = git(merged, ['rev-parse', 'HEAD']);
    const d = commitFiles(merged, { d: 'd' }, { message: 'd', ...at(1) });
    const observed = { a, s1, s2, b, o1, m, d };
    for (const [name, oid] of Object.entries(observed)) {
      await record(`dev-${name}`, keys.ghost!, status(`dev-${name}`, oid), '2026-11-23T12:00:00Z', merged);
    }
    const rows = (await readDeviceStates(merged)).devices;
    for (const [name, oid] of Object.entries(observed)) {
      const expected = Number(git(merged, ['rev-list', '--count', `${oid}..main`]));
      expect([name, rowOf(rows, `dev-${name}`).behind]).toEqual([name, expected]);
    }
    expect(rowOf(rows, 'dev-o1').behind).toBe(4); // s1, s2, m, d: a and b are reachable from o1
  });

  it('flags state commits that are not signed by the key in the device record', async () => {
    const rows = (await readDeviceStates(dir)).devices;
    const intruder = rowOf(rows, 'pi-0044');
    expect(intruder.signature).toMatchObject({
      verified: false,
      reason: expect.stringMatching(/^signed by another key \(SHA256:/) as unknown,
    });
    expect(intruder.behind).toBeUndefined(); // its observed revision is not in the repository
    expect(rowOf(rows, 'pi-0047').signature).toMatchObject({ verified: false, reason: 'unsigned' });
    expect(rowOf(rows, 'ghost-0001')).toMatchObject({
      hasRecord: false,
      signature: { verified: false, reason: 'no device record' },
      behind: 0,
    });
    expect(rowOf(rows, 'gw-0007').signature).toMatchObject({
      verified: false,
      reason: 'device record has no publicKey',
    });
  });

  it('gives a garbage or oversized status.yaml an error row', async () => {
    const rows = (await readDeviceStates(dir)).devices;
    for (const device of ['gw-0007', 'nuc-0001']) {
      expect(rowOf(rows, device)).toMatchObject({
        reported: true,
        state: 'Unknown',
        errors: ['invalid_manifest'],
        observedRevision: undefined,
        lastSeen: '2026-01-01T00:00:00Z',
      });
    }
    expect(rowOf(rows, 'nuc-0001').summary).toMatch(/larger than/);
    expect(rowOf(rows, 'blob-0001')).toMatchObject({
      state: 'Unknown',
      errors: ['invalid_manifest'],
      signature: { verified: false, reason: expect.stringMatching(/^state commit unreadable/) as unknown },
    });
  });

  it('refuses a revision that does not exist', async () => {
    await expect(readDeviceStates(dir, { rev: 'no-such-branch' })).rejects.toMatchObject({
      code: 'invalid_manifest',
    });
  });
});

describe('readDeviceHistory', () => {
  it('lists state commits newest first, joined with the source commits and their signers', async () => {
    const history = await readDeviceHistory(dir, 'pi-0042', { allowedSigners });
    expect(history.more).toBe(false);
    expect(history.entries.map((e) => e.observedRevision)).toEqual([c[2], c[1], c[0]]);
    expect(history.entries.map((e) => e.source?.subject)).toEqual([
      'Third change',
      'Second change',
      'Initial fleet',
    ]);
    expect(history.entries.map((e) => e.recordedAt)).toEqual([
      '2026-11-22T10:00:00Z',
      '2026-11-21T10:00:00Z',
      '2026-11-20T10:00:00Z',
    ]);
    const [latest] = history.entries;
    expect(latest).toMatchObject({
      stateCommit: git(dir, ['rev-parse', stateRef('pi-0042')]),
      state: 'Ready',
      signature: { verified: true },
      source: {
        commit: c[2],
        author: 'Fleet Author <author@fleet.test>',
        authoredAt: '2024-01-01T00:00:00Z',
        signer: { status: 'trusted', principals: ['release'] },
      },
    });
  });

  it('says unsigned, not checked or bad for the source signer', async () => {
    const unsigned = await readDeviceHistory(dir, 'pi-0043', { allowedSigners });
    expect(unsigned.entries[0]?.source?.signer).toEqual({ status: 'unsigned' });
    expect(unsigned.entries[0]).toMatchObject({ state: 'Stalled', errors: ['hook_failed'] });
    const unchecked = await readDeviceHistory(dir, 'pi-0042');
    expect(unchecked.entries[0]?.source?.signer).toMatchObject({
      status: 'not-checked',
      fingerprint: expect.stringMatching(/^SHA256:/) as unknown,
    });
    const strangers = join(work, 'strangers');
    writeAllowedSigners(strangers, [keys.intruder!]);
    const bad = await readDeviceHistory(dir, 'pi-0042', { allowedSigners: strangers });
    expect(bad.entries[0]?.source?.signer).toMatchObject({
      status: 'bad',
      reason: expect.stringMatching(/allowed_signers does not trust/) as unknown,
    });
  });

  it('stops at the limit and says more follow', async () => {
    const history = await readDeviceHistory(dir, 'pi-0042', { limit: 2 });
    expect(history.entries.map((e) => e.observedRevision)).toEqual([c[2], c[1]]);
    expect(history.more).toBe(true);
  });

  it('flags a hostile state commit in history too', async () => {
    const history = await readDeviceHistory(dir, 'pi-0044');
    expect(history.entries[0]).toMatchObject({
      signature: { verified: false, reason: expect.stringMatching(/^signed by another key/) as unknown },
      observedRevision: 'f'.repeat(40),
      source: undefined,
    });
  });

  it('refuses an unknown device with invalid_manifest', async () => {
    const error = await readDeviceHistory(dir, 'pi-9999').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GitfleetError);
    expect(error).toMatchObject({
      code: 'invalid_manifest',
      message: expect.stringMatching(/no device pi-9999/) as unknown,
    });
    await expect(readDeviceHistory(dir, 'pi-0100')).rejects.toThrow(/has a record but no state ref/);
    await expect(readDeviceHistory(dir, '../../HEAD')).rejects.toMatchObject({ code: 'invalid_manifest' });
  });
});

describe('gitfleet status and history', () => {
  it('status --json prints every device', () => {
    const { status: code, json } = runCliJson<{
      commit: string;
      devices: {
        device: string;
        state: string;
        behind: number | null;
        signature: { verified: boolean } | null;
      }[];
    }>(['status', '--dir', dir]);
    expect(code).toBe(0);
    expect(json.commit).toBe(c[3]);
    expect(json.devices.find((d) => d.device === 'pi-0042')).toMatchObject({
      state: 'Ready',
      behind: 1,
      signature: { verified: true },
    });
    expect(json.devices.find((d) => d.device === 'pi-0100')).toMatchObject({ behind: null, signature: null });
  });

  it('status flags unverified rows in its table', () => {
    const { status: code, stdout } = runCli(['status', '--dir', dir]);
    expect(code).toBe(0);
    const line = stdout.split('\n').find((l) => l.startsWith('pi-0044'));
    expect(line).toMatch(/UNVERIFIED: signed by another key/);
    expect(stdout.split('\n').find((l) => l.startsWith('pi-0042'))).toMatch(
      /Ready\s+\S{12}\s+1\s.*verified$/,
    );
  });

  it('history --json joins source signers; an unknown device is an error', () => {
    const { status: code, json } = runCliJson<{
      entries: { source: { subject: string; signer: { status: string; principals?: string[] } } | null }[];
    }>(['history', 'pi-0042', '--dir', dir, '--allowed-signers', allowedSigners, '--limit', '2']);
    expect(code).toBe(0);
    expect(json.entries.map((e) => e.source?.subject)).toEqual(['Third change', 'Second change']);
    expect(json.entries[0]?.source?.signer).toEqual({
      status: 'trusted',
      fingerprint: expect.stringMatching(/^SHA256:/) as unknown,
      principals: ['release'],
    });
    const unknown = runCliJson<{ error: { code: string } }>(['history', 'pi-9999', '--dir', dir]);
    expect(unknown.status).toBe(1);
    expect(unknown.json.error.code).toBe('invalid_manifest');
  });
});
