import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mulberry32 } from '../bench/generate-fleet.js';
import { parseSshPrivateKey, parseSshPublicKey } from '../src/git/ssh-key.js';
import { maxArmoredLength, signSsh, verifySsh } from '../src/git/ssh-signature.js';
import { SshReader, armor, sshString, sshUint32, unarmor } from '../src/git/ssh-wire.js';
import { expectUntrusted } from './support/expect-untrusted.js';

/**
 * SSHSIG against the real peers: stock ssh-keygen and git make the keys and signatures we verify, and
 * judge the signatures we make. Hostile input must always end in a typed `untrusted_revision` error.
 */

const env = {
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_AUTHOR_NAME: 'Alice',
  GIT_AUTHOR_EMAIL: 'alice@example.com',
  GIT_AUTHOR_DATE: '2025-01-01T00:00:00Z',
  GIT_COMMITTER_NAME: 'Alice',
  GIT_COMMITTER_EMAIL: 'alice@example.com',
  GIT_COMMITTER_DATE: '2025-01-01T00:00:00Z',
};
const keySpecs = {
  ed25519: ['-t', 'ed25519'],
  other: ['-t', 'ed25519'],
  rsa: ['-t', 'rsa', '-b', '2048'],
  ecdsa256: ['-t', 'ecdsa', '-b', '256'],
  ecdsa384: ['-t', 'ecdsa', '-b', '384'],
  ecdsa521: ['-t', 'ecdsa', '-b', '521'],
} as const;
type KeyName = keyof typeof keySpecs;
const verifiableKeys: KeyName[] = ['ed25519', 'rsa', 'ecdsa256', 'ecdsa384', 'ecdsa521'];
const message = Buffer.from('fleet.yaml at 9f86d08\n');

let dir: string;
const key = (name: KeyName): string => join(dir, name);

function run(command: string, args: string[]): string {
  return execFileSync(command, args, { cwd: dir, env, encoding: 'utf8', stdio: 'pipe' });
}

/** `ssh-keygen -Y sign` over `message`, returning the armored signature. */
async function keygenSign(name: KeyName, namespace = 'git', extra: string[] = []): Promise<string> {
  const file = join(dir, `message-${name}-${namespace}-${extra.join('')}`);
  await writeFile(file, message);
  await rm(`${file}.sig`, { force: true });
  run('ssh-keygen', ['-Y', 'sign', '-f', key(name), '-n', namespace, ...extra, file]);
  return readFile(`${file}.sig`, 'utf8');
}

/** `ssh-keygen -Y verify` of `signature` over `message` against an allowed_signers naming `name`. */
async function keygenVerify(name: KeyName, signature: string, namespace: string): Promise<number | null> {
  const pub = (await readFile(`${key(name)}.pub`, 'utf8')).trim();
  await writeFile(join(dir, 'allowed_signers'), `signer@example.com ${pub}\n`);
  await writeFile(join(dir, 'ours.sig'), signature);
  const args = ['-Y', 'verify', '-f', 'allowed_signers', '-I', 'signer@example.com', '-n', namespace];
  return spawnSync('ssh-keygen', [...args, '-s', 'ours.sig'], { cwd: dir, env, input: message }).status;
}

/** The SSHSIG fields of an armored signature, to rebuild it with one field changed. */
function fields(armored: string): {
  blob: Uint8Array;
  namespace: string;
  hash: string;
  signature: Uint8Array;
} {
  const reader = new SshReader(unarmor(armored, 'SSH SIGNATURE', 'test')!, 'test');
  reader.fixed(10); // preamble and version
  const blob = reader.string();
  const namespace = reader.text();
  reader.string();
  return { blob, namespace, hash: reader.text(), signature: reader.string() };
}

function rebuild(parts: ReturnType<typeof fields>, version = 1): string {
  const { blob, namespace, hash, signature } = parts;
  const body = [blob, namespace, '', hash, signature].map((field) => sshString(field));
  return armor(Buffer.concat([Buffer.from('SSHSIG'), sshUint32(version), ...body]), 'SSH SIGNATURE');
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gitfleet-sshsig-'));
  for (const [name, spec] of Object.entries(keySpecs)) {
    run('ssh-keygen', ['-q', ...spec, '-N', '', '-C', `${name}@example.com`, '-f', key(name as KeyName)]);
  }
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('keys', () => {
  it.each(verifiableKeys)('%s: fingerprint equals ssh-keygen -l', async (name) => {
    const listed = run('ssh-keygen', ['-lf', `${key(name)}.pub`]).split(' ')[1];
    expect(parseSshPublicKey(await readFile(`${key(name)}.pub`, 'utf8')).fingerprint).toBe(listed);
  });

  it.each(verifiableKeys)('%s: the private key file yields the same public key', async (name) => {
    const privateKey = parseSshPrivateKey(await readFile(key(name), 'utf8'));
    const publicKey = parseSshPublicKey(await readFile(`${key(name)}.pub`, 'utf8'));
    expect(Buffer.from(privateKey.publicKey.blob).equals(publicKey.blob)).toBe(true);
  });

  it('refuses an encrypted private key, saying so', async () => {
    run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'secret', '-f', join(dir, 'encrypted')]);
    const text = await readFile(join(dir, 'encrypted'), 'utf8');
    expectUntrusted(() => parseSshPrivateKey(text), 'is encrypted');
  });

  it('refuses a PEM private key and a public key line with the wrong type', async () => {
    run('ssh-keygen', ['-q', '-t', 'ecdsa', '-m', 'PEM', '-N', '', '-f', join(dir, 'pem')]);
    const pem = await readFile(join(dir, 'pem'), 'utf8');
    expectUntrusted(() => parseSshPrivateKey(pem), 'not an OpenSSH private key');
    const line = (await readFile(`${key('ed25519')}.pub`, 'utf8')).replace('ssh-ed25519', 'ssh-rsa');
    expectUntrusted(() => parseSshPublicKey(line), 'the line says "ssh-rsa" but the key is ssh-ed25519');
  });
});

describe('signatures made by ssh-keygen', () => {
  it.each(verifiableKeys)('%s: verifySsh accepts them and returns the signing key', async (name) => {
    const { publicKey } = verifySsh(await keygenSign(name), message, 'git');
    expect(publicKey.fingerprint).toBe(
      parseSshPublicKey(await readFile(`${key(name)}.pub`, 'utf8')).fingerprint,
    );
  });

  it('accepts hash_algorithm sha256 (ssh-keygen -O hashalg=sha256)', async () => {
    const signature = await keygenSign('rsa', 'git', ['-O', 'hashalg=sha256']);
    expect(fields(signature).hash).toBe('sha256');
    expect(verifySsh(signature, message, 'git').publicKey.type).toBe('ssh-rsa');
  });
});

describe('signatures made by signSsh', () => {
  it.each(verifiableKeys)(
    '%s: ssh-keygen -Y verify accepts them, and refuses another namespace',
    async (name) => {
      const privateKey = parseSshPrivateKey(await readFile(key(name), 'utf8'));
      const signature = signSsh(message, 'git', privateKey);
      expect(await keygenVerify(name, signature, 'git')).toBe(0);
      expect(await keygenVerify(name, signature, 'file')).not.toBe(0);
      expect(verifySsh(signature, message, 'git').publicKey.fingerprint).toBe(
        privateKey.publicKey.fingerprint,
      );
    },
  );

  it('ed25519 (deterministic): byte for byte what ssh-keygen writes', async () => {
    const ours = signSsh(message, 'git', parseSshPrivateKey(await readFile(key('ed25519'), 'utf8')));
    expect(ours).toBe(await keygenSign('ed25519'));
  });
});

describe('a commit signed by git (gpg.format=ssh)', () => {
  /** Splits a raw commit into the signed payload and the `gpgsig` signature, as git does. */
  function cutSignature(raw: string): { payload: string; signature: string } {
    const lines = raw.split('\n');
    const start = lines.findIndex((line) => line.startsWith('gpgsig '));
    let end = start + 1;
    while (lines[end]?.startsWith(' ')) end++;
    const signature = [
      lines[start]!.slice('gpgsig '.length),
      ...lines.slice(start + 1, end).map((l) => l.slice(1)),
    ];
    return {
      payload: [...lines.slice(0, start), ...lines.slice(end)].join('\n'),
      signature: signature.join('\n'),
    };
  }

  it('verifies in namespace git, and a one-byte change to the payload is refused', async () => {
    const repo = join(dir, 'repo');
    run('git', ['init', '-q', repo]);
    await writeFile(join(repo, 'fleet.yaml'), 'kind: Fleet\n');
    const git = (...args: string[]): string => run('git', ['-C', repo, ...args]);
    git('config', 'gpg.format', 'ssh');
    git('config', 'user.signingkey', `${key('ed25519')}.pub`);
    git('add', 'fleet.yaml');
    git('commit', '-q', '-S', '-m', 'Add the fleet');

    const { payload, signature } = cutSignature(git('cat-file', 'commit', 'HEAD'));
    expect(signature).toMatch(/^-----BEGIN SSH SIGNATURE-----\n[\s\S]+\n-----END SSH SIGNATURE-----$/);
    const { publicKey } = verifySsh(signature, Buffer.from(payload), 'git');
    expect(publicKey.fingerprint).toBe(run('ssh-keygen', ['-lf', `${key('ed25519')}.pub`]).split(' ')[1]);

    const tampered = payload.replace('Add the fleet', 'Add the fleeT');
    expectUntrusted(
      () => verifySsh(signature, Buffer.from(tampered), 'git'),
      'signature does not match the signed data',
    );
  });
});

describe('refused signatures', () => {
  let good: string;
  beforeAll(async () => {
    good = await keygenSign('ed25519');
  });

  it('another namespace', () => {
    expectUntrusted(() => verifySsh(good, message, 'file'), 'signature namespace is "git", expected "file"');
  });

  it('a modified message', () => {
    expectUntrusted(
      () => verifySsh(good, Buffer.from('fleet.yaml at 0000000\n'), 'git'),
      'does not match the signed data',
    );
  });

  it("key A's signature carrying key B's public key", async () => {
    const other = parseSshPublicKey(await readFile(`${key('other')}.pub`, 'utf8'));
    const swapped = rebuild({ ...fields(good), blob: other.blob });
    expectUntrusted(() => verifySsh(swapped, message, 'git'), 'signature does not match the signed data');
  });

  it('an RSA signature relabelled as SHA-1 ssh-rsa', async () => {
    const parts = fields(await keygenSign('rsa'));
    const inner = new SshReader(parts.signature, 'test');
    inner.text();
    const relabelled = Buffer.concat([sshString('ssh-rsa'), sshString(inner.string())]);
    expectUntrusted(
      () => verifySsh(rebuild({ ...parts, signature: relabelled }), message, 'git'),
      'signature algorithm "ssh-rsa" does not fit a ssh-rsa key',
    );
  });

  it('an unsupported key type or size, version or hash algorithm', () => {
    const sk = Buffer.concat([sshString('sk-ssh-ed25519@openssh.com'), sshString(new Uint8Array(32))]);
    expectUntrusted(
      () => verifySsh(rebuild({ ...fields(good), blob: sk }), message, 'git'),
      'unsupported key type',
    );
    expectUntrusted(() => verifySsh(rebuild(fields(good), 2), message, 'git'), 'version 2, expected 1');
    const hugeRsa = Buffer.concat([
      sshString('ssh-rsa'),
      sshString(Uint8Array.of(1, 0, 1)),
      sshString(new Uint8Array(2100).fill(0x7f)),
    ]);
    const slow = rebuild({ ...fields(good), blob: hugeRsa });
    expectUntrusted(
      () => verifySsh(slow, message, 'git'),
      'ssh-rsa with a 16799-bit modulus (need 1024 to 16384)',
    );
    const md5 = rebuild({ ...fields(good), hash: 'md5' });
    expectUntrusted(() => verifySsh(md5, message, 'git'), 'unsupported hash algorithm "md5"');
  });

  it('every truncation of the signature bytes', () => {
    const bytes = unarmor(good, 'SSH SIGNATURE', 'test')!;
    for (let length = 0; length < bytes.length; length++) {
      expectUntrusted(
        () => verifySsh(armor(bytes.subarray(0, length), 'SSH SIGNATURE'), message, 'git'),
        'malformed',
      );
    }
  });

  it('every single-byte change of the signature bytes', () => {
    const bytes = unarmor(good, 'SSH SIGNATURE', 'test')!;
    for (let i = 0; i < bytes.length; i++) {
      const changed = Buffer.from(bytes);
      changed[i]! ^= 0x01;
      expectUntrusted(() => verifySsh(armor(changed, 'SSH SIGNATURE'), message, 'git'));
    }
  });

  it('truncated armor', () => {
    expectUntrusted(
      () => verifySsh(good.slice(0, Math.floor(good.length / 2)), message, 'git'),
      'not an SSH signature',
    );
    const lines = good.split('\n');
    const cut = [...lines.slice(0, 2), ...lines.slice(-2)].join('\n');
    expectUntrusted(() => verifySsh(cut, message, 'git'), 'malformed SSH signature');
  });

  it('random garbage, seeded, bare and inside the armor lines', () => {
    const next = mulberry32(42);
    for (let i = 0; i < 300; i++) {
      const garbage = String.fromCharCode(
        ...Array.from({ length: Math.floor(next() * 400) }, () => Math.floor(next() * 256)),
      );
      expectUntrusted(() => verifySsh(garbage, message, 'git'), 'not an SSH signature');
      const armored = `-----BEGIN SSH SIGNATURE-----\n${garbage}\n-----END SSH SIGNATURE-----\n`;
      expectUntrusted(() => verifySsh(armored, message, 'git'), 'malformed SSH signature');
    }
  });

  it('base64 of random bytes, with and without the SSHSIG preamble', () => {
    const next = mulberry32(7);
    for (let i = 0; i < 300; i++) {
      const random = Uint8Array.from({ length: Math.floor(next() * 600) }, () => Math.floor(next() * 256));
      const prefixed = Buffer.concat([Buffer.from('SSHSIG'), sshUint32(1), random]);
      for (const bytes of [random, prefixed]) {
        expectUntrusted(() => verifySsh(armor(bytes, 'SSH SIGNATURE'), message, 'git'));
      }
    }
  });

  it('a length field of 0xffffffff', () => {
    const bytes = Buffer.from(unarmor(good, 'SSH SIGNATURE', 'test')!);
    bytes.writeUInt32BE(0xffffffff, 10); // the public key's length
    expectUntrusted(
      () => verifySsh(armor(bytes, 'SSH SIGNATURE'), message, 'git'),
      'length field 4294967295 at byte 10 points past the end',
    );
  });

  it('armor of 1 MB', () => {
    const huge = `-----BEGIN SSH SIGNATURE-----\n${'A'.repeat(1024 * 1024)}\n-----END SSH SIGNATURE-----\n`;
    expect(huge.length).toBeGreaterThan(maxArmoredLength);
    expectUntrusted(() => verifySsh(huge, message, 'git'), 'over the limit of 65536');
  });

  it('missing BEGIN or END line', () => {
    const lines = good.trim().split('\n');
    expectUntrusted(() => verifySsh(lines.slice(1).join('\n'), message, 'git'), 'not an SSH signature');
    expectUntrusted(() => verifySsh(lines.slice(0, -1).join('\n'), message, 'git'), 'not an SSH signature');
  });
});
