import { createHash, createPrivateKey, createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { GitfleetError } from '../schema/gitfleet-error.js';
import { SshReader, decodeBase64, quoteUntrusted, unarmor } from './ssh-wire.js';

/** The plain (non-certificate, non-FIDO) OpenSSH key types gitfleet can verify and sign with. */
export const sshKeyTypes = [
  'ssh-ed25519',
  'ssh-rsa',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
] as const;

export type SshKeyType = (typeof sshKeyTypes)[number];
type EcdsaKeyType = Extract<SshKeyType, `ecdsa-${string}`>;

/** Per curve: its name inside key blobs, its JWK name, its field size and the hash RFC 5656 pairs with it. */
export const ecdsaCurves: Record<EcdsaKeyType, { name: string; jwk: string; size: number; hash: string }> = {
  'ecdsa-sha2-nistp256': { name: 'nistp256', jwk: 'P-256', size: 32, hash: 'sha256' },
  'ecdsa-sha2-nistp384': { name: 'nistp384', jwk: 'P-384', size: 48, hash: 'sha384' },
  'ecdsa-sha2-nistp521': { name: 'nistp521', jwk: 'P-521', size: 66, hash: 'sha512' },
};

/**
 * OpenSSH's RSA bounds (SSH_RSA_MINIMUM_MODULUS_SIZE, SSHBUF_MAX_BIGNUM): weaker keys are refused, and
 * bigger ones would only slow verification down.
 */
const rsaBits = { min: 1024, max: 16384 };

export interface SshPublicKey {
  type: SshKeyType;
  /** The SSH wire encoding of the key: what signatures embed and `allowed_signers` lines hold in base64. */
  blob: Uint8Array;
  key: KeyObject;
  /** `SHA256:<unpadded base64>`, exactly as `ssh-keygen -l` prints it. */
  fingerprint: string;
}

export interface SshPrivateKey {
  publicKey: SshPublicKey;
  /** The signing key. */
  key: KeyObject;
}

export function isSshKeyType(type: string): type is SshKeyType {
  return (sshKeyTypes as readonly string[]).includes(type);
}

/**
 * Parses one OpenSSH public key line (`ssh-ed25519 AAAA... comment`, as in `key.pub`).
 * @throws GitfleetError `untrusted_revision` when the line is malformed or the key type is unsupported.
 */
export function parseSshPublicKey(line: string): SshPublicKey {
  const [type = '', base64 = ''] = line.trim().split(/\s+/);
  const publicKey = parseSshPublicKeyBlob(decodeBase64(base64, 'SSH public key'));
  if (publicKey.type !== type) {
    throw new GitfleetError(
      'untrusted_revision',
      `malformed SSH public key: the line says ${quoteUntrusted(type)} but the key is ${publicKey.type}`,
    );
  }
  return publicKey;
}

/**
 * Parses the SSH wire encoding of a public key (RFC 4253 §6.6, RFC 5656 §3.1).
 * @throws GitfleetError `untrusted_revision` when the blob is malformed or the key type is unsupported.
 */
export function parseSshPublicKeyBlob(bytes: Uint8Array): SshPublicKey {
  const blob = new Uint8Array(bytes);
  const reader = new SshReader(blob, 'SSH public key');
  const type = reader.text();
  if (!isSshKeyType(type)) {
    throw new GitfleetError('untrusted_revision', `unsupported key type ${quoteUntrusted(type)}`);
  }
  const jwk = readPublicJwk(type, reader);
  reader.end();
  return {
    type,
    blob,
    key: importKey(() => createPublicKey({ key: jwk, format: 'jwk' }), reader),
    fingerprint: `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`,
  };
}

function readPublicJwk(type: SshKeyType, reader: SshReader): JsonWebKey {
  switch (type) {
    case 'ssh-ed25519': {
      const x = reader.string();
      if (x.length !== 32) reader.fail(`ed25519 key is ${x.length} bytes, expected 32`);
      return { kty: 'OKP', crv: 'Ed25519', x: base64url(x) };
    }
    case 'ssh-rsa': {
      const e = reader.mpint();
      const n = reader.mpint();
      // A huge exponent is no stronger, only slower to verify: cap it as OpenSSL does for large moduli.
      if (e.length > 8) reader.fail('RSA public exponent over 64 bits');
      const bits = bitLength(n);
      if (bits < rsaBits.min || bits > rsaBits.max) {
        throw new GitfleetError(
          'untrusted_revision',
          `unsupported key type ssh-rsa with a ${bits}-bit modulus (need ${rsaBits.min} to ${rsaBits.max})`,
        );
      }
      return { kty: 'RSA', n: base64url(n), e: base64url(e) };
    }
    default: {
      const curve = ecdsaCurves[type];
      if (reader.text() !== curve.name) reader.fail(`${type} key names another curve`);
      const point = reader.string();
      if (point.length !== 1 + 2 * curve.size || point[0] !== 4) reader.fail('EC point is not uncompressed');
      return {
        kty: 'EC',
        crv: curve.jwk,
        x: base64url(point.subarray(1, 1 + curve.size)),
        y: base64url(point.subarray(1 + curve.size)),
      };
    }
  }
}

/**
 * Parses an unencrypted OpenSSH private key file (`-----BEGIN OPENSSH PRIVATE KEY-----`, the format of
 * OpenSSH's PROTOCOL.key) holding one key of a type in `sshKeyTypes`.
 * @throws GitfleetError `untrusted_revision` when the file is not such a key, is encrypted, is corrupt,
 *   or its private half does not belong to its public half.
 */
export function parseSshPrivateKey(text: string): SshPrivateKey {
  const label = 'OpenSSH private key';
  const bytes = unarmor(text, 'OPENSSH PRIVATE KEY', label);
  if (bytes === undefined) {
    throw new GitfleetError('untrusted_revision', 'not an OpenSSH private key', {
      hint: 'ssh-keygen writes this format; convert a PEM key with `ssh-keygen -p -f KEY`',
    });
  }
  const outer = new SshReader(bytes, label);
  if (Buffer.from(outer.fixed(15)).toString('latin1') !== 'openssh-key-v1\0') {
    outer.fail('missing openssh-key-v1 magic');
  }
  const cipher = outer.text();
  outer.text(); // KDF name, and below its options: only used by encrypted keys
  outer.string();
  if (cipher !== 'none') {
    throw new GitfleetError(
      'untrusted_revision',
      `OpenSSH private key is encrypted (${quoteUntrusted(cipher)}); gitfleet cannot ask for a passphrase`,
      { hint: 'use a key without a passphrase for unattended signing (ssh-keygen -N "")' },
    );
  }
  const count = outer.uint32();
  if (count !== 1) outer.fail(`holds ${count} keys, expected 1`);
  const publicKey = parseSshPublicKeyBlob(outer.string());
  const inner = new SshReader(outer.string(), label);
  outer.end();

  if (inner.uint32() !== inner.uint32()) inner.fail('check integers differ');
  if (inner.text() !== publicKey.type) inner.fail('private key type differs from its public key');
  const jwk = readPrivateJwk(publicKey.type, inner);
  inner.text(); // comment
  for (let pad = 1; inner.remaining > 0; pad++) {
    if (inner.fixed(1)[0] !== pad) inner.fail('bad padding');
  }
  const key = importKey(() => createPrivateKey({ key: jwk, format: 'jwk' }), inner);
  if (!createPublicKey(key).equals(publicKey.key)) {
    inner.fail('private key does not belong to its public key');
  }
  return { publicKey, key };
}

function readPrivateJwk(type: SshKeyType, reader: SshReader): JsonWebKey {
  switch (type) {
    case 'ssh-ed25519': {
      const x = reader.string();
      const secret = reader.string(); // seed || public key
      if (secret.length !== 64) reader.fail(`ed25519 private key is ${secret.length} bytes, expected 64`);
      return { kty: 'OKP', crv: 'Ed25519', x: base64url(x), d: base64url(secret.subarray(0, 32)) };
    }
    case 'ssh-rsa': {
      // PROTOCOL.key order; JWK also wants the CRT exponents, which OpenSSH recomputes instead of storing
      const n = reader.mpint();
      const e = reader.mpint();
      const d = reader.mpint();
      const iqmp = reader.mpint();
      const p = reader.mpint();
      const q = reader.mpint();
      if (bitLength(p) < 2 || bitLength(q) < 2) reader.fail('RSA primes missing');
      return {
        kty: 'RSA',
        n: base64url(n),
        e: base64url(e),
        d: base64url(d),
        p: base64url(p),
        q: base64url(q),
        dp: base64url(fromBigInt(toBigInt(d) % (toBigInt(p) - 1n))),
        dq: base64url(fromBigInt(toBigInt(d) % (toBigInt(q) - 1n))),
        qi: base64url(iqmp),
      };
    }
    default: {
      const curve = ecdsaCurves[type];
      if (reader.text() !== curve.name) reader.fail(`${type} key names another curve`);
      const point = reader.string();
      const d = reader.mpint();
      if (point.length !== 1 + 2 * curve.size || d.length > curve.size) reader.fail('bad EC key size');
      return {
        kty: 'EC',
        crv: curve.jwk,
        x: base64url(point.subarray(1, 1 + curve.size)),
        y: base64url(point.subarray(1 + curve.size)),
        d: base64url(Buffer.concat([new Uint8Array(curve.size - d.length), d])),
      };
    }
  }
}

/** node:crypto rejects some well-framed but invalid keys (points off the curve, say): fail typed. */
function importKey(create: () => KeyObject, reader: SshReader): KeyObject {
  try {
    return create();
  } catch (error) {
    return reader.fail(
      `key rejected by node:crypto (${error instanceof Error ? error.message : String(error)})`,
    );
  }
}

function base64url(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64url');
}

function toBigInt(bytes: Uint8Array): bigint {
  return bytes.length === 0 ? 0n : BigInt(`0x${Buffer.from(bytes).toString('hex')}`);
}

function fromBigInt(value: bigint): Uint8Array {
  const hex = value.toString(16);
  return Buffer.from(hex.length % 2 === 0 ? hex : `0${hex}`, 'hex');
}

function bitLength(magnitude: Uint8Array): number {
  return magnitude.length === 0 ? 0 : (magnitude.length - 1) * 8 + (32 - Math.clz32(magnitude[0]!));
}
