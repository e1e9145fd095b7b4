import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectLabels, loadAgentConfig } from '../src/agent/load-agent-config.js';
import { generateSshKey } from '../src/git/generate-ssh-key.js';
import { parseSshPrivateKey } from '../src/git/ssh-key.js';
import { verifySsh } from '../src/git/ssh-signature.js';
import { parseAgentConfig } from '../src/schema/agent-config.js';
import { parseFleet } from '../src/schema/parse-fleet.js';
import { ensureBuilt, runCli, runCliJson } from './support/run-cli.js';

const MINIMAL = [
  'device: { id: pi-0042, labels: { fleet: alpha } }',
  'source: { remotes: [http://127.0.0.1:8080/fleet.git] }',
  'trust: { allowedSigners: ./allowed_signers }',
  'dirs: { state: ./state, root: /opt/gitfleet }',
  '',
].join('\n');

let work: string;
beforeAll(() => {
  ensureBuilt();
  work = mkdtempSync(join(tmpdir(), 'gitfleet-agent-config-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

function parse(text: string) {
  return parseAgentConfig({ path: 'agent.yaml', data: text });
}

describe('parseAgentConfig', () => {
  it('fills in the defaults of a minimal agent.yaml', () => {
    const result = parse(MINIMAL);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.value).toMatchObject({
      device: { id: 'pi-0042', labels: { fleet: 'alpha' } },
      source: { remotes: [{ url: 'http://127.0.0.1:8080/fleet.git' }], ref: 'main', thinPacks: false },
      trust: { allowedSigners: './allowed_signers', policy: 'head', timestamp: false },
      state: { key: undefined, push: true, remote: undefined },
      poll: { intervalSeconds: 60, jitter: 0.1 },
    });
  });

  it('keeps remote credentials given as objects, and label values as written', () => {
    const result = parse(
      MINIMAL.replace(
        '[http://127.0.0.1:8080/fleet.git]',
        '[{ url: https://git.example/f.git, token: t }]',
      ).replace('fleet: alpha', 'fleet: alpha, version: 1.10'),
    );
    expect(result.ok && result.value.source.remotes).toEqual([
      { url: 'https://git.example/f.git', token: 't' },
    ]);
    expect(result.ok && result.value.device.labels.version).toBe('1.10');
  });

  const refusals: [string, string, number, number][] = [
    ['an unknown field', `${MINIMAL}colour: blue\n`, 5, 1],
    ['a device id that is not a ref name', MINIMAL.replace('pi-0042', 'pi..0042'), 1, 11],
    [
      'a remote that is not http(s)',
      MINIMAL.replace('http://127.0.0.1:8080/fleet.git', 'file:///srv/fleet'),
      2,
      21,
    ],
    ['an unknown policy', MINIMAL.replace('./allowed_signers }', './allowed_signers, policy: none }'), 3, 45],
    ['a missing dirs section', MINIMAL.replace('dirs: { state: ./state, root: /opt/gitfleet }\n', ''), 1, 1],
    ['two documents', `${MINIMAL}---\n${MINIMAL}`, 6, 1],
    ['an empty file', '', 1, 1],
  ];
  for (const [what, text, line, col] of refusals) {
    it(`refuses ${what} at file:line:col`, () => {
      const result = parse(text);
      expect(result.ok).toBe(false);
      if (result.ok) return;
      expect(result.errors[0]).toMatchObject({
        code: 'invalid_manifest',
        location: { file: 'agent.yaml', line, col },
      });
    });
  }

  it('refuses an alias bomb in bounded time', () => {
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 12; i++)
      bomb.push(
        `${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10)
          .fill(`*${String.fromCharCode(96 + i)}`)
          .join(', ')}]`,
      );
    const result = parse(bomb.join('\n'));
    expect(result.ok).toBe(false);
  });
});

describe('loadAgentConfig', () => {
  it('resolves relative paths against the file and adds detected labels the file does not set', async () => {
    const dir = mkdtempSync(join(work, 'load-'));
    writeFileSync(
      join(dir, 'agent.yaml'),
      MINIMAL.replace('{ fleet: alpha }', '{ fleet: alpha, os: custom }'),
    );
    const config = await loadAgentConfig(join(dir, 'agent.yaml'));
    expect(config.trust.allowedSigners).toBe(join(dir, 'allowed_signers'));
    expect(config.dirs).toEqual({ state: join(dir, 'state'), root: '/opt/gitfleet' });
    expect(config.device.labels).toEqual({ fleet: 'alpha', os: 'custom', arch: detectLabels().arch });
  });

  it('says which file cannot be read', async () => {
    await expect(loadAgentConfig(join(work, 'missing.yaml'))).rejects.toMatchObject({
      code: 'invalid_manifest',
      message: expect.stringContaining('missing.yaml') as string,
    });
  });
});

describe('generateSshKey', () => {
  it('writes keys stock ssh-keygen reads and signs with, and gitfleet verifies', () => {
    const key = generateSshKey('pi-0042');
    const path = join(work, 'generated');
    writeFileSync(path, key.privateKey, { mode: 0o600 });
    expect(execFileSync('ssh-keygen', ['-y', '-f', path], { encoding: 'utf8' }).trim()).toBe(key.publicKey);
    writeFileSync(join(work, 'message'), 'hello');
    execFileSync('ssh-keygen', ['-Y', 'sign', '-f', path, '-n', 'git', join(work, 'message')], {
      stdio: 'ignore',
    });
    const signature = readFileSync(join(work, 'message.sig'), 'utf8');
    const { publicKey } = verifySsh(signature, Buffer.from('hello'), 'git');
    expect(publicKey.fingerprint).toBe(parseSshPrivateKey(key.privateKey).publicKey.fingerprint);
  });
});

describe('gitfleet agent init', () => {
  it('writes a private key only its owner reads, a config that loads, and a device record that parses', async () => {
    const dir = join(work, 'init');
    const { status, json } = runCliJson<{ config: string; key: string; publicKey: string; record: string }>([
      'agent',
      'init',
      '--dir',
      dir,
      '--id',
      'pi-0042',
      '--label',
      'fleet=alpha',
      '--remote',
      'http://127.0.0.1:8080/fleet.git',
    ]);
    expect(status).toBe(0);
    expect(statSync(json.key).mode & 0o777).toBe(0o600);
    const config = await loadAgentConfig(json.config);
    expect(config.state.key).toBe(json.key);
    const fleet = parseFleet([
      { path: 'fleet.yaml', data: 'kind: Fleet\n' },
      { path: 'devices/pi-0042.yaml', data: json.record },
    ]);
    expect(fleet.ok && fleet.value.devices[0]).toMatchObject({ id: 'pi-0042', publicKey: json.publicKey });
  });

  it('keeps an existing key unless --force, and writes nothing for a bad id', () => {
    const dir = join(work, 'again');
    const args = [
      'agent',
      'init',
      '--dir',
      dir,
      '--id',
      'pi-0043',
      '--remote',
      'http://127.0.0.1:8080/f.git',
    ];
    expect(runCli(args).status).toBe(0);
    const before = readFileSync(join(dir, 'device_ed25519'), 'utf8');
    const refused = runCliJson<{ error: { code: string; message: string } }>(args);
    expect(refused.status).toBe(1);
    expect(refused.json.error.message).toContain('exists (--force replaces it)');
    expect(readFileSync(join(dir, 'device_ed25519'), 'utf8')).toBe(before);
    expect(runCli([...args, '--force']).status).toBe(0);
    expect(readFileSync(join(dir, 'device_ed25519'), 'utf8')).not.toBe(before);
    const bad = runCli([
      'agent',
      'init',
      '--dir',
      join(work, 'bad'),
      '--id',
      'a..b',
      '--remote',
      'http://x/f.git',
    ]);
    expect(bad.status).toBe(1);
    expect(() => statSync(join(work, 'bad'))).toThrow();
  });
});
