import { createHash, sign, verify } from 'node:crypto';
import { GitfleetError } from '../schema/gitfleet-error.js';
import { ecdsaCurves, parseSshPublicKeyBlob, type SshPrivateKey, type SshPublicKey } from './ssh-key.js';
import { SshReader, armor, quoteUntrusted, sshMpint, sshString, sshUint32, unarmor } from './ssh-wire.js';

/**
 * SSHSIG, the signature format of `ssh-keygen -Y sign` and of `git commit -S` with `gpg.format=ssh`
 * (OpenSSH PROTOCOL.sshsig), on node:crypto alone.
 */

const magic = Buffer.from('SSHSIG');
const tag = 'SSH SIGNATURE';
const label = 'SSH signature';
/** Far above any real signature (an RSA-16384 one is under 5 KiB); bounds work done on hostile input. */
export const maxArmoredLength = 64 * 1024;
const hashAlgorithms = ['sha256', 'sha512'];
const rsaSignatureHashes = new Map([
  ['rsa-sha2-256', 'sha256'],
  ['rsa-sha2-512', 'sha512'],
]);

/**
 * Signs `message` for `namespace` (git uses `git`) and returns the armored signature, as `ssh-keygen -Y
 * sign` would write it: hash sha512, RSA keys sign with rsa-sha2-512.
 * @throws GitfleetError `untrusted_revision` when the namespace is empty (OpenSSH refuses those).
 */
export function signSsh(message: Uint8Array, namespace: string, privateKey: SshPrivateKey): string {
  if (namespace === '') throw new GitfleetError('untrusted_revision', 'an SSH signature needs a namespace');
  const hashAlgorithm = 'sha512';
  const data = signedData(namespace, hashAlgorithm, message);
  const sshsig = Buffer.concat([
    magic,
    sshUint32(1),
    sshString(privateKey.publicKey.blob),
    sshString(namespace),
    sshString(''), // reserved
    sshString(hashAlgorithm),
    sshString(signBlob(privateKey, data)),
  ]);
  return armor(sshsig, tag);
}

/** The SSH signature blob over `data`, in the algorithm ssh-keygen picks for the key. */
function signBlob({ publicKey, key }: SshPrivateKey, data: Uint8Array): Uint8Array {
  switch (publicKey.type) {
    case 'ssh-ed25519':
      return Buffer.concat([sshString(publicKey.type), sshString(sign(null, data, key))]);
    case 'ssh-rsa':
      return Buffer.concat([sshString('rsa-sha2-512'), sshString(sign('sha512', data, key))]);
    default: {
      const curve = ecdsaCurves[publicKey.type];
      const rs = sign(curve.hash, data, { key, dsaEncoding: 'ieee-p1363' });
      const body = Buffer.concat([sshMpint(rs.subarray(0, curve.size)), sshMpint(rs.subarray(curve.size))]);
      return Buffer.concat([sshString(publicKey.type), sshString(body)]);
    }
  }
}

/**
 * Checks that `armored` is a valid SSHSIG signature over `message` by the public key it embeds, made for
 * `namespace`. It does not decide trust: the caller looks the returned key up in `allowed_signers`.
 * @throws GitfleetError `untrusted_revision` with the specific reason on any failure, including every
 *   kind of malformed or oversized input; nothing else escapes.
 */
export function verifySsh(
  armored: string,
  message: Uint8Array,
  namespace: string,
): { publicKey: SshPublicKey } {
  try {
    return verifyOrThrow(armored, message, namespace);
  } catch (error) {
    if (error instanceof GitfleetError) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    throw new GitfleetError('untrusted_revision', `malformed SSH signature: ${reason}`, { cause: error });
  }
}

function verifyOrThrow(armored: string, message: Uint8Array, namespace: string): { publicKey: SshPublicKey } {
  if (armored.length > maxArmoredLength) {
    throw new GitfleetError(
      'untrusted_revision',
      `malformed SSH signature: ${armored.length} characters, over the limit of ${maxArmoredLength}`,
    );
  }
  const bytes = unarmor(armored, tag, label);
  if (bytes === undefined) {
    throw new GitfleetError('untrusted_revision', `not an SSH signature: no -----BEGIN ${tag}----- block`);
  }
  const reader = new SshReader(bytes, label);
  if (!magic.equals(reader.fixed(magic.length))) reader.fail('missing SSHSIG preamble');
  const version = reader.uint32();
  if (version !== 1) reader.fail(`version ${version}, expected 1`);
  const publicKey = parseSshPublicKeyBlob(reader.string());
  const signedNamespace = reader.text();
  reader.string(); // reserved: OpenSSH ignores it and signs an empty one, so must we
  const hashAlgorithm = reader.text();
  const signature = reader.string();
  reader.end();
  if (!hashAlgorithms.includes(hashAlgorithm)) {
    reader.fail(`unsupported hash algorithm ${quoteUntrusted(hashAlgorithm)}`);
  }
  if (signedNamespace !== namespace) {
    throw new GitfleetError(
      'untrusted_revision',
      `signature namespace is ${quoteUntrusted(signedNamespace)}, expected ${quoteUntrusted(namespace)}`,
    );
  }
  if (!verifySignature(publicKey, signedData(namespace, hashAlgorithm, message), signature)) {
    throw new GitfleetError('untrusted_revision', 'signature does not match the signed data');
  }
  return { publicKey };
}

/** What is actually signed: the preamble, namespace, reserved, hash algorithm and H(message). */
function signedData(namespace: string, hashAlgorithm: string, message: Uint8Array): Buffer {
  return Buffer.concat([
    magic,
    sshString(namespace),
    sshString(''),
    sshString(hashAlgorithm),
    sshString(createHash(hashAlgorithm).update(message).digest()),
  ]);
}

/** Verifies an SSH signature blob (`string algorithm, string signature`; RFC 4253, RFC 5656). */
function verifySignature(publicKey: SshPublicKey, data: Uint8Array, blob: Uint8Array): boolean {
  const reader = new SshReader(blob, label);
  const algorithm = reader.text();
  const signature = reader.string();
  reader.end();
  const { type, key } = publicKey;
  const mismatch = (): never =>
    reader.fail(`signature algorithm ${quoteUntrusted(algorithm)} does not fit a ${type} key`);
  switch (type) {
    case 'ssh-ed25519':
      if (algorithm !== type) mismatch();
      if (signature.length !== 64) reader.fail(`ed25519 signature is ${signature.length} bytes, expected 64`);
      return verify(null, data, key, signature);
    case 'ssh-rsa': {
      // OpenSSH refuses SHA-1 (`ssh-rsa`) signatures in SSHSIG; so do we.
      const hash = rsaSignatureHashes.get(algorithm) ?? mismatch();
      const size = Math.ceil((key.asymmetricKeyDetails?.modulusLength ?? 0) / 8);
      if (signature.length > size) reader.fail('RSA signature is longer than the modulus');
      return verify(hash, data, key, leftPad(signature, size));
    }
    default: {
      if (algorithm !== type) mismatch();
      const curve = ecdsaCurves[type];
      const inner = new SshReader(signature, label);
      const r = inner.mpint();
      const s = inner.mpint();
      inner.end();
      if (r.length > curve.size || s.length > curve.size) reader.fail('ECDSA signature is too large');
      const rs = Buffer.concat([leftPad(r, curve.size), leftPad(s, curve.size)]);
      return verify(curve.hash, data, { key, dsaEncoding: 'ieee-p1363' }, rs);
    }
  }
}

function leftPad(bytes: Uint8Array, size: number): Uint8Array {
  return Buffer.concat([new Uint8Array(size - bytes.length), bytes]);
}
