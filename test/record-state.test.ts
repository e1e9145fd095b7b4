import * as fs from 'node:fs';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { GitRepo } from '../src/git/git-repo.js';
import { createHttpClient } from '../src/git/http-client.js';
import { recordState, stateRef, type StateTarget } from '../src/git/record-state.js';
import { prepareRemote } from '../src/git/remote.js';
import { parseSshPrivateKey } from '../src/git/ssh-key.js';
import { initSourceRepo } from '../src/git/sync-source.js';
import { formatDeviceStatus, parseDeviceStatus, type DeviceStatus } from '../src/schema/device-status.js';
import { makeLabels } from '../src/schema/labels.js';
import {
  git,
  gitAsync,
  makeSigningKey,
  writeAllowedSigners,
  type SigningKey,
} from './support/git-fixture.js';
import { startGitServer, unusedUrl, type GitServer } from './support/git-http-server.js';

let work: string;
let server: GitServer;
let bare: string;
let deviceKey: SigningKey;
let allowedSigners: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'gitfleet-state-'));
  const root = join(work, 'served');
  mkdirSync(root);
  bare = join(root, 'state.git');
  git(root, ['init', '-q', '--bare', bare]);
  git(bare, ['config', 'http.receivepack', 'true']);
  deviceKey = makeSigningKey(work, 'pi-0042');
  allowedSigners = join(work, 'allowed_signers');
  writeAllowedSigners(allowedSigners, [deviceKey]);
  server = await startGitServer(root);
});

afterAll(async () => {
  await server?.close();
  rmSync(work, { recursive: true, force: true });
});

const http = createHttpClient({ limits: { connectMs: 1000, firstByteMs: 2000, totalMs: 5000 } });
let repo: GitRepo;
let deviceId: string;
let count = 0;

beforeEach(async () => {
  const gitdir = mkdtempSync(join(work, 'device-'));
  repo = { fs, dir: gitdir, gitdir, cache: {} };
  await initSourceRepo(repo);
  deviceId = `pi-${String(++count).padStart(4, '0')}`;
  server.resetLog();
});

function target(overrides: Partial<StateTarget> = {}): StateTarget {
  return {
    repo,
    http,
    remote: prepareRemote({ url: server.urlOf('state.git') }),
    deviceId,
    key: parseSshPrivateKey(readFileSync(deviceKey.privatePath, 'utf8')),
    now: new Date('2026-11-23T10:00:00Z'),
    ...overrides,
  };
}

function status(observedRevision: string, reason = 'Converged'): DeviceStatus {
  return {
    device: deviceId,
    labels: makeLabels([
      ['fleet', 'alpha'],
      ['arch', 'armv7l'],
    ]),
    observedRevision,
    conditions: [{ type: 'Ready', status: 'True', reason, message: '' }],
    packets: [{ name: 'logger', labels: makeLabels([['version', '1.0.0']]), sha256: 'a'.repeat(64) }],
    errors: [],
  };
}

const verifyConfig = { 'gpg.ssh.allowedSignersFile': '' };

async function verifyOnServer(ref: string): Promise<void> {
  await gitAsync(bare, ['verify-commit', ref], {
    config: { ...verifyConfig, 'gpg.ssh.allowedSignersFile': allowedSigners },
  });
}

describe('recordState', () => {
  it('commits status.yaml signed with the device key and pushes it; stock git verifies it', async () => {
    const result = await recordState(target(), status('1'.repeat(40)));
    expect(result).toMatchObject({ changed: true, pushed: true, pushError: undefined });
    expect(await gitAsync(bare, ['rev-parse', stateRef(deviceId)])).toBe(result.commit);
    await verifyOnServer(stateRef(deviceId));
    await gitAsync(bare, ['fsck', '--strict']);
    expect(await gitAsync(bare, ['log', '-1', '--format=%s', stateRef(deviceId)])).toBe(
      `${deviceId}: Ready: Converged at ${'1'.repeat(12)}`,
    );
    const text = await gitAsync(bare, ['show', `${stateRef(deviceId)}:status.yaml`]);
    expect(`${text}\n`).toBe(formatDeviceStatus(status('1'.repeat(40))));
    const parsed = parseDeviceStatus({ path: 'status.yaml', data: text });
    expect(parsed.ok && parsed.value.observedRevision).toBe('1'.repeat(40));
  });

  it('makes no commit and no request when nothing changed', async () => {
    const first = await recordState(target(), status('1'.repeat(40)));
    server.resetLog();
    const again = await recordState(
      target({ now: new Date('2026-11-24T10:00:00Z') }),
      status('1'.repeat(40)),
    );
    expect(again).toEqual({ commit: first.commit, changed: false, pushed: true, pushError: undefined });
    expect(server.requests).toHaveLength(0);
  });

  it('chains a changed status on the previous state commit', async () => {
    const first = await recordState(target(), status('1'.repeat(40)));
    const second = await recordState(target(), status('2'.repeat(40)));
    expect(second.changed).toBe(true);
    expect(await gitAsync(bare, ['rev-parse', `${second.commit}^`])).toBe(first.commit);
    await verifyOnServer(second.commit);
  });

  it('keeps the commit while offline and pushes it on a later pass', async () => {
    const offline = prepareRemote({ url: `${await unusedUrl()}/state.git` });
    const waiting = await recordState(target({ remote: offline }), status('3'.repeat(40)));
    expect(waiting).toMatchObject({ changed: true, pushed: false });
    expect(waiting.pushError).toMatch(/ECONNREFUSED/);
    const later = await recordState(target(), status('3'.repeat(40)));
    expect(later).toEqual({ commit: waiting.commit, changed: false, pushed: true, pushError: undefined });
    expect(await gitAsync(bare, ['rev-parse', stateRef(deviceId)])).toBe(waiting.commit);
  });

  it('rebuilds on top of the remote state when its push is rejected, never forcing', async () => {
    const first = await recordState(target(), status('4'.repeat(40)));
    // Another copy of the device (restored from a backup) records something else: its push is rejected,
    // so it builds on the remote's state commit.
    const otherGitdir = mkdtempSync(join(work, 'device-'));
    const other: GitRepo = { fs, dir: otherGitdir, gitdir: otherGitdir, cache: {} };
    await initSourceRepo(other);
    const theirs = await recordState({ ...target(), repo: other }, status('5'.repeat(40), 'Restored'));
    expect(theirs).toMatchObject({ changed: true, pushed: true });
    expect(await gitAsync(bare, ['rev-parse', `${theirs.commit}^`])).toBe(first.commit);
    // Back on the first copy: its next state is rejected too and rebuilt on top of theirs.
    const ours = await recordState(target(), status('6'.repeat(40)));
    expect(ours).toMatchObject({ changed: true, pushed: true });
    const remoteTip = await gitAsync(bare, ['rev-parse', stateRef(deviceId)]);
    expect(remoteTip).toBe(ours.commit);
    expect(await gitAsync(bare, ['rev-parse', `${remoteTip}^`])).toBe(theirs.commit);
    await verifyOnServer(remoteTip);
    await gitAsync(bare, ['fsck', '--strict']);
    expect(await gitAsync(bare, ['rev-list', '--count', remoteTip])).toBe('3');
  });

  it('records locally only when there is no state remote', async () => {
    const result = await recordState(target({ remote: undefined }), status('7'.repeat(40)));
    expect(result).toMatchObject({ changed: true, pushed: false, pushError: undefined });
    expect(git(repo.gitdir, ['rev-parse', stateRef(deviceId)])).toBe(result.commit);
    expect(server.requests).toHaveLength(0);
  });
});
