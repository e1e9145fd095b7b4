import { GitfleetError } from '../schema/gitfleet-error.js';

/**
 * The SSH wire encoding (RFC 4251 §5) that SSH keys and SSHSIG signatures are made of: big-endian uint32,
 * length-prefixed strings and mpints. Hostile input is the normal case here, so every read is bounds
 * checked against the bytes actually present and never allocates from a length field.
 */

/** Reads SSH wire fields in order; any overrun throws `untrusted_revision` "malformed <label>: ...". */
export class SshReader {
  private offset = 0;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly label: string,
  ) {}

  /** Throws the typed "malformed <label>" error; also for callers that find a field with a bad value. */
  fail(reason: string): never {
    throw new GitfleetError('untrusted_revision', `malformed ${this.label}: ${reason}`);
  }

  uint32(): number {
    if (this.bytes.length - this.offset < 4) this.fail(`truncated at byte ${this.offset}`);
    const b = this.bytes;
    const o = this.offset;
    this.offset += 4;
    return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
  }

  /** An SSH `string`: the bytes, as a view into the input (no copy). */
  string(): Uint8Array {
    const length = this.uint32();
    const left = this.bytes.length - this.offset;
    if (length > left) this.fail(`length field ${length} at byte ${this.offset - 4} points past the end`);
    const value = this.bytes.subarray(this.offset, this.offset + length);
    this.offset += length;
    return value;
  }

  /** An SSH `string` decoded as UTF-8, for names such as key types and namespaces. */
  text(): string {
    return Buffer.from(this.string()).toString('utf8');
  }

  /** A non-negative SSH `mpint` as its minimal big-endian magnitude (leading zeros dropped). */
  mpint(): Uint8Array {
    const value = this.string();
    if (value.length > 0 && value[0]! & 0x80) this.fail('negative mpint');
    let start = 0;
    while (start < value.length && value[start] === 0) start++;
    return value.subarray(start);
  }

  /** Raw bytes without a length prefix, such as a magic preamble. */
  fixed(length: number): Uint8Array {
    if (this.bytes.length - this.offset < length) this.fail(`truncated at byte ${this.offset}`);
    const value = this.bytes.subarray(this.offset, this.offset + length);
    this.offset += length;
    return value;
  }

  get remaining(): number {
    return this.bytes.length - this.offset;
  }

  /** Asserts that every byte was consumed: trailing data is as suspicious as missing data. */
  end(): void {
    if (this.remaining !== 0) this.fail(`${this.remaining} bytes of trailing data`);
  }
}

/** Encodes an SSH `uint32`. */
export function sshUint32(value: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value);
  return out;
}

/** Encodes an SSH `string` from bytes or from text (as UTF-8). */
export function sshString(value: Uint8Array | string): Uint8Array {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  return Buffer.concat([sshUint32(bytes.length), bytes]);
}

/** Encodes a non-negative big-endian magnitude as a minimal SSH `mpint`. */
export function sshMpint(magnitude: Uint8Array): Uint8Array {
  let start = 0;
  while (start < magnitude.length && magnitude[start] === 0) start++;
  const trimmed = magnitude.subarray(start);
  const needsZero = trimmed.length > 0 && trimmed[0]! & 0x80;
  return sshString(needsZero ? Buffer.concat([Uint8Array.of(0), trimmed]) : trimmed);
}

/** Shows untrusted text in a message: quoted, escaped, and cut short so a hostile field cannot flood logs. */
export function quoteUntrusted(text: string, max = 64): string {
  return JSON.stringify(text.length > max ? `${text.slice(0, max)}…` : text);
}

/**
 * Decodes canonical base64 only: `Buffer.from(text, 'base64')` silently skips junk, which would let
 * garbage pass as a smaller valid blob.
 */
export function decodeBase64(text: string, label: string): Uint8Array {
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) {
    throw new GitfleetError('untrusted_revision', `malformed ${label}: not valid base64`);
  }
  return Buffer.from(text, 'base64');
}

/**
 * The bytes between `-----BEGIN <tag>-----` and `-----END <tag>-----` (surrounding whitespace allowed),
 * or undefined when `text` is not such a block.
 */
export function unarmor(text: string, tag: string, label: string): Uint8Array | undefined {
  const begin = `-----BEGIN ${tag}-----`;
  const end = `-----END ${tag}-----`;
  const trimmed = text.trim();
  if (trimmed.length < begin.length + end.length || !trimmed.startsWith(begin) || !trimmed.endsWith(end)) {
    return undefined;
  }
  return decodeBase64(trimmed.slice(begin.length, -end.length).replace(/\s+/g, ''), label);
}

/** Armors bytes as OpenSSH does: base64 in 70-column lines, ending with a newline. */
export function armor(bytes: Uint8Array, tag: string): string {
  const base64 = Buffer.from(bytes).toString('base64');
  const lines = [`-----BEGIN ${tag}-----`];
  for (let i = 0; i < base64.length; i += 70) lines.push(base64.slice(i, i + 70));
  lines.push(`-----END ${tag}-----`, '');
  return lines.join('\n');
}
