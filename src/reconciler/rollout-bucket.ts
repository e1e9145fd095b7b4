// SHA-256 (FIPS 180-4) for the short inputs of rollout buckets. A resolver of a whole fleet hashes one
// input per device and partial-rollout spec: this one encodes into reused buffers and allocates nothing,
// where a general-purpose hash allocates a hasher, a UTF-8 copy and a digest per call.
const K = Uint32Array.from([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
  0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
  0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
  0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
  0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
  0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
  0xc67178f2,
]);
const INITIAL = Uint32Array.from([
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
]);
const state = new Uint32Array(8);
const schedule = new Uint32Array(64);
let message = new Uint8Array(128);

/** Writes the UTF-8 bytes of `text` into `message` from `n` (room must be made); returns the new end. */
function encodeUtf8(text: string, n: number): number {
  for (let i = 0; i < text.length; i++) {
    let c = text.charCodeAt(i);
    if (c < 0x80) message[n++] = c;
    else if (c < 0x800) {
      message[n++] = 0xc0 | (c >> 6);
      message[n++] = 0x80 | (c & 63);
    } else {
      const next = i + 1 < text.length ? text.charCodeAt(i + 1) : 0;
      if (c >= 0xd800 && c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
        i++;
        message[n++] = 0xf0 | (c >> 18);
        message[n++] = 0x80 | ((c >> 12) & 63);
      } else {
        // A lone surrogate is U+FFFD, as TextEncoder writes it.
        if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd;
        message[n++] = 0xe0 | (c >> 12);
      }
      message[n++] = 0x80 | ((c >> 6) & 63);
      message[n++] = 0x80 | (c & 63);
    }
  }
  return n;
}

/** SHA-256 of the UTF-8 bytes of `a + "/" + b`, left in `state` as eight big-endian words. */
function sha256Joined(a: string, b: string): void {
  // At most 3 bytes per UTF-16 unit, plus SHA-256 padding (up to 72 bytes).
  const room = (a.length + 1 + b.length) * 3 + 72;
  if (message.length < room) message = new Uint8Array(room);
  let length = encodeUtf8(a, 0);
  message[length++] = 0x2f;
  length = encodeUtf8(b, length);
  // Padding: 0x80, zeros, then the bit length as a 64-bit big-endian number, to a multiple of 64 bytes.
  const blocks = Math.ceil((length + 9) / 64);
  const end = blocks * 64;
  message[length] = 0x80;
  message.fill(0, length + 1, end);
  const bits = length * 8;
  message[end - 5] = Math.floor(bits / 2 ** 32) & 0xff;
  message[end - 4] = (bits >>> 24) & 0xff;
  message[end - 3] = (bits >>> 16) & 0xff;
  message[end - 2] = (bits >>> 8) & 0xff;
  message[end - 1] = bits & 0xff;
  state.set(INITIAL);
  const w = schedule;
  for (let offset = 0; offset < end; offset += 64) {
    for (let i = 0; i < 16; i++) {
      const j = offset + i * 4;
      w[i] =
        ((message[j] as number) << 24) |
        ((message[j + 1] as number) << 16) |
        ((message[j + 2] as number) << 8) |
        (message[j + 3] as number);
    }
    for (let i = 16; i < 64; i++) {
      const w15 = w[i - 15] as number;
      const w2 = w[i - 2] as number;
      const s0 = ((w15 >>> 7) | (w15 << 25)) ^ ((w15 >>> 18) | (w15 << 14)) ^ (w15 >>> 3);
      const s1 = ((w2 >>> 17) | (w2 << 15)) ^ ((w2 >>> 19) | (w2 << 13)) ^ (w2 >>> 10);
      w[i] = ((w[i - 16] as number) + s0 + (w[i - 7] as number) + s1) | 0;
    }
    let a = state[0] as number;
    let b = state[1] as number;
    let c = state[2] as number;
    let d = state[3] as number;
    let e = state[4] as number;
    let f = state[5] as number;
    let g = state[6] as number;
    let h = state[7] as number;
    for (let i = 0; i < 64; i++) {
      const s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const t1 = (h + s1 + ((e & f) ^ (~e & g)) + (K[i] as number) + (w[i] as number)) | 0;
      const s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const t2 = (s0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      h = g;
      g = f;
      f = e;
      e = (d + t1) | 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) | 0;
    }
    state[0] = ((state[0] as number) + a) | 0;
    state[1] = ((state[1] as number) + b) | 0;
    state[2] = ((state[2] as number) + c) | 0;
    state[3] = ((state[3] as number) + d) | 0;
    state[4] = ((state[4] as number) + e) | 0;
    state[5] = ((state[5] as number) + f) | 0;
    state[6] = ((state[6] as number) + g) | 0;
    state[7] = ((state[7] as number) + h) | 0;
  }
}

/**
 * The rollout bucket of a device for a spec: sha256(spec id + "/" + device id), read as one big-endian
 * number, mod 10000. Stable across machines and releases.
 */
export function rolloutBucket(specId: string, deviceId: string): number {
  sha256Joined(specId, deviceId);
  // Horner over the digest's 32-bit words: (bucket × 2^32 + word) mod 10000, with 2^32 mod 10000 = 7296,
  // so every step stays below 2^31 and runs on integers.
  let bucket = 0;
  for (let i = 0; i < 8; i++) bucket = (bucket * 7296 + ((state[i] as number) % 10000)) % 10000;
  return bucket;
}

/**
 * True when a spec with `rollout.percent: percent` applies to the device: bucket < percent × 100.
 * Percent is honoured to two decimals (14.3 means buckets 0..1429); widening it only ever adds devices.
 */
export function inRollout(specId: string, deviceId: string, percent: number): boolean {
  if (percent >= 100) return true;
  if (percent <= 0) return false;
  return rolloutBucket(specId, deviceId) * 100 < Math.round(percent * 10000);
}
