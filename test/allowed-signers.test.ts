import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findSigner, parseAllowedSigners, type AllowedSigner } from '../src/git/allowed-signers.js';
import { parseSshPublicKey, type SshPublicKey } from '../src/git/ssh-key.js';
import { verifySsh } from '../src/git/ssh-signature.js';
import { expectUntrusted } from './support/expect-untrusted.js';

/**
 * git's allowed_signers format (ssh-keygen(1), ALLOWED SIGNERS), parsed by us and cross-checked against
 * `ssh-keygen -Y find-principals` on keys and signatures that stock ssh-keygen makes.
 */

const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
const message = Buffer.from('fleet.yaml at 9f86d08\n');
let dir: string;
const pub: Record<'alice' | 'carol' | 'ci', string> = { alice: '', carol: '', ci: '' };
const key = {} as Record<keyof typeof pub, SshPublicKey>;
let file: string;
let signers: AllowedSigner[];

function run(args: string[]): string {
  return execFileSync('ssh-keygen', args, { cwd: dir, env, encoding: 'utf8', stdio: 'pipe' });
}

/** Signs `message` with ssh-keygen, returning the signature file's path. */
async function keygenSign(name: keyof typeof pub): Promise<string> {
  const signed = join(dir, `message-${name}`);
  await writeFile(signed, message);
  await rm(`${signed}.sig`, { force: true });
  run(['-Y', 'sign', '-f', join(dir, name), '-n', 'git', signed]);
  return `${signed}.sig`;
}

/** `ssh-keygen -Y find-principals` at `time` (YYYYMMDD): the principals it prints, or undefined if none. */
function keygenFindPrincipals(signature: string, time: string): string[] | undefined {
  const args = [
    '-Y',
    'find-principals',
    '-O',
    `verify-time=${time}`,
    '-s',
    signature,
    '-f',
    'allowed_signers',
  ];
  const result = spawnSync('ssh-keygen', args, { cwd: dir, env, encoding: 'utf8' });
  return result.status === 0 ? result.stdout.trim().split('\n') : undefined;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gitfleet-allowed-signers-'));
  const types = { alice: 'ed25519', carol: 'ed25519', ci: 'ecdsa' };
  for (const [name, type] of Object.entries(types) as [keyof typeof pub, string][]) {
    run(['-q', '-t', type, '-N', '', '-C', `${name} laptop`, '-f', join(dir, name)]);
    pub[name] = (await readFile(join(dir, `${name}.pub`), 'utf8')).trim();
    key[name] = parseSshPublicKey(pub[name]);
  }
  file = [
    '# gitfleet signers',
    `alice@example.com,bob@example.com ${pub.alice}`,
    '',
    `  "carol smith@example.com" NAMESPACES="file,git" ${pub.carol}`,
    `*@ci.example.com,!evil@ci.example.com valid-after="20240101",valid-before="20250101Z" ${pub.ci}`,
    `alice@example.com namespaces="!git,*" ${pub.carol}`,
    `ca@example.com cert-authority ${pub.alice}`,
    'yubikey@example.com sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29t',
  ].join('\r\n');
  signers = parseAllowedSigners(file, 'allowed_signers');
  await writeFile(join(dir, 'allowed_signers'), file);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('parseAllowedSigners', () => {
  it('reads principals, quoted principals, options and keys; skips comments and blank lines', () => {
    expect(signers.map((s) => [s.line, s.principals, s.namespaces, s.keyType])).toEqual([
      [2, ['alice@example.com', 'bob@example.com'], undefined, 'ssh-ed25519'],
      [4, ['carol smith@example.com'], ['file', 'git'], 'ssh-ed25519'],
      [5, ['*@ci.example.com', '!evil@ci.example.com'], undefined, 'ecdsa-sha2-nistp256'],
      [6, ['alice@example.com'], ['!git', '*'], 'ssh-ed25519'],
      [7, ['ca@example.com'], undefined, 'ssh-ed25519'],
      [8, ['yubikey@example.com'], undefined, 'sk-ssh-ed25519@openssh.com'],
    ]);
    expect(Buffer.from(signers[0]!.blob).equals(key.alice.blob)).toBe(true);
  });

  it('reads valid-after in local time and valid-before with Z in UTC, like ssh-keygen', () => {
    const ci = signers[2]!;
    expect(ci.validAfter).toEqual(new Date(2024, 0, 1));
    expect(ci.validBefore).toEqual(new Date(Date.UTC(2025, 0, 1)));
    const [timed] = parseAllowedSigners(`a valid-before="202406301230z" ${pub.ci}`, 'f');
    expect(timed!.validBefore).toEqual(new Date(Date.UTC(2024, 5, 30, 12, 30)));
  });

  it('keeps cert-authority and unsupported key types, marked unsupported', () => {
    expect(signers.map((s) => s.unsupported !== undefined)).toEqual([false, false, false, false, true, true]);
    expect(signers[4]!.unsupported).toContain('cert-authority');
    expect(signers[5]!.unsupported).toContain('sk-ssh-ed25519@openssh.com is not supported');
  });

  it.each([
    ['alice@example.com', 'expected principals, [options,] key type and key'],
    ['alice@example.com ssh-ed25519', 'expected principals'],
    ['alice@example.com foo="bar" ssh-ed25519 AAAA', 'unsupported or malformed option "foo=\\"bar\\""'],
    ['alice@example.com namespaces=git ssh-ed25519 AAAA', 'unsupported or malformed option "namespaces=git"'],
    [
      'alice@example.com namespaces="git",namespaces="file" ssh-ed25519 AAAA',
      'option namespaces given twice',
    ],
    ['alice@example.com valid-before="20250230" ssh-ed25519 AAAA', 'invalid timestamp "20250230"'],
    ['alice@example.com valid-before="2025" ssh-ed25519 AAAA', 'invalid timestamp "2025"'],
    ['"alice smith@example.com ssh-ed25519 AAAA', 'unterminated quote'],
    ['alice,,bob ssh-ed25519 AAAA', 'empty principal'],
    ['alice ssh-ed25519 AAAA*', 'malformed public key: not valid base64'],
    ['alice ssh-ed25519 AAAA', 'malformed SSH public key'],
    ['alice ssh-unknown AAAA', 'unsupported or malformed option "ssh-unknown"'],
    ['alice cert-authority ssh-unknown AAAA', 'unknown key type "ssh-unknown"'],
  ])('refuses %j with path:line', (line, fragment) => {
    expectUntrusted(
      () => parseAllowedSigners(`# header\n\n${line}\n`, 'keys/allowed_signers'),
      'keys/allowed_signers:3: ',
    );
    expectUntrusted(() => parseAllowedSigners(line, 'f'), fragment);
  });

  it('refuses a line whose key type differs from its key', () => {
    const line = `alice@example.com ${pub.alice.replace('ssh-ed25519', 'ecdsa-sha2-nistp256')}`;
    expectUntrusted(
      () => parseAllowedSigners(line, 'f'),
      'f:1: key type ecdsa-sha2-nistp256 does not match the key',
    );
  });
});

describe('findSigner', () => {
  it('finds the entry by key blob, skipping entries whose namespaces refuse', () => {
    expect(findSigner(signers, key.alice, { namespace: 'git' })?.line).toBe(2);
    expect(findSigner(signers, key.carol, { namespace: 'git' })?.line).toBe(4);
    expect(findSigner(signers, key.carol, { namespace: 'file' })?.line).toBe(4);
    expect(findSigner(signers, key.carol, { namespace: 'other' })?.line).toBe(6);
    expect(findSigner(signers.slice(3), key.carol, { namespace: 'git' })).toBeUndefined();
  });

  it('never matches a cert-authority entry with a plain key', () => {
    expect(findSigner(signers.slice(4), key.alice, { namespace: 'git' })).toBeUndefined();
  });

  it('respects the validity window, inclusive at both ends, to the second', () => {
    const at = (date: Date) => findSigner(signers, key.ci, { namespace: 'git', at: date })?.line;
    expect(at(new Date(2024, 0, 1))).toBe(5);
    expect(at(new Date(new Date(2024, 0, 1).getTime() - 1))).toBeUndefined();
    expect(at(new Date(Date.UTC(2025, 0, 1, 0, 0, 0, 999)))).toBe(5);
    expect(at(new Date(Date.UTC(2025, 0, 1, 0, 0, 1)))).toBeUndefined();
    expect(findSigner(signers, key.ci, { namespace: 'git' })?.line).toBe(5);
  });

  it.each(['alice', 'carol', 'ci'] as const)(
    '%s: the principals equal what ssh-keygen -Y find-principals prints',
    async (name) => {
      const signature = await keygenSign(name);
      const { publicKey } = verifySsh(await readFile(signature, 'utf8'), message, 'git');
      const ours = findSigner(signers, publicKey, { namespace: 'git', at: new Date(2024, 5, 1) });
      expect(ours?.principals).toBeDefined();
      expect(ours?.principals).toEqual(keygenFindPrincipals(signature, '20240601'));
    },
  );

  it('agrees with ssh-keygen -Y find-principals that an expired key has no principal', async () => {
    const signature = await keygenSign('ci');
    expect(keygenFindPrincipals(signature, '20250102')).toBeUndefined();
    const { publicKey } = verifySsh(await readFile(signature, 'utf8'), message, 'git');
    expect(findSigner(signers, publicKey, { namespace: 'git', at: new Date(2025, 0, 2) })).toBeUndefined();
  });
});
