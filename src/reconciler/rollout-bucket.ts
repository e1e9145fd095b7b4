import { sha256 } from '@noble/hashes/sha2.js';

const encoder = new TextEncoder();

/**
 * The rollout bucket of a device for a spec: sha256(spec id + "/" + device id), read as one big-endian
 * number, mod 10000. Stable across machines and releases.
 */
export function rolloutBucket(specId: string, deviceId: string): number {
  const digest = sha256(encoder.encode(`${specId}/${deviceId}`));
  let bucket = 0;
  for (const byte of digest) bucket = (bucket * 256 + byte) % 10000;
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
