import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { armor, sshString, sshUint32 } from './ssh-wire.js';

export interface GeneratedSshKey {
  /** The private key file, OpenSSH format, unencrypted (as `ssh-keygen -t ed25519 -N ''` writes it). */
  privateKey: string;
  /** The public key line, `ssh-ed25519 AAAA… comment`. */
  publicKey: string;
}

function base64url(text: string | undefined): Buffer {
  return Buffer.from(text ?? '', 'base64url');
}

/**
 * A new Ed25519 key pair in OpenSSH's own formats (PROTOCOL.key), so stock ssh-keygen and git read it:
 * a device signs its state commits with it and its public key goes into its device record.
 */
export function generateSshKey(comment: string): GeneratedSshKey {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const pub = base64url(publicKey.export({ format: 'jwk' }).x);
  const seed = base64url(privateKey.export({ format: 'jwk' }).d);
  const blob = Buffer.concat([sshString('ssh-ed25519'), sshString(pub)]);
  const check = randomBytes(4);
  const unpadded = Buffer.concat([
    check,
    check,
    sshString('ssh-ed25519'),
    sshString(pub),
    sshString(Buffer.concat([seed, pub])),
    sshString(comment),
  ]);
  const padding = Buffer.from(Array.from({ length: (8 - (unpadded.length % 8)) % 8 }, (_, i) => i + 1));
  const body = Buffer.concat([
    Buffer.from('openssh-key-v1\0', 'latin1'),
    sshString('none'),
    sshString('none'),
    sshString(''),
    sshUint32(1),
    sshString(blob),
    sshString(Buffer.concat([unpadded, padding])),
  ]);
  return {
    privateKey: armor(body, 'OPENSSH PRIVATE KEY'),
    publicKey: `ssh-ed25519 ${blob.toString('base64')} ${comment}`,
  };
}
