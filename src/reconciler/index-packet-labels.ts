import { compareStrings } from '../schema/compare-strings.js';
import type { Packet } from '../schema/fleet.js';

/**
 * The labels of a fleet's packets as ids, read once: packet `i` (its position in the list indexed) has
 * key `keys[keyOf[j]]` with value id `valueOf[j]` for every `j` from `starts[i]` to `starts[i + 1]`.
 */
export interface PacketLabels {
  /** Every key a packet has, sorted; a key's id is its position. */
  readonly keys: readonly string[];
  /** Per key id: the values packets have for it, sorted, each with its id (position + 1; 0 is none). */
  readonly values: readonly ReadonlyMap<string, number>[];
  readonly keyOf: Int32Array;
  readonly valueOf: Int32Array;
  readonly starts: Int32Array;
}

export function indexPacketLabels(packets: readonly Packet[]): PacketLabels {
  // Ids in order of first sight while reading, renumbered in sorted order after.
  const seenKeys = new Map<string, number>();
  const seenValues: Map<string, number>[] = [];
  let keyOf: Int32Array<ArrayBuffer> = new Int32Array(packets.length * 4 + 16);
  let valueOf = new Int32Array(keyOf.length);
  const starts = new Int32Array(packets.length + 1);
  let n = 0;
  for (let i = 0; i < packets.length; i++) {
    const labels = (packets[i] as Packet).labels;
    for (const key in labels) {
      let k = seenKeys.get(key);
      if (k === undefined) {
        k = seenKeys.size;
        seenKeys.set(key, k);
        seenValues.push(new Map());
      }
      const seen = seenValues[k] as Map<string, number>;
      const value = labels[key] ?? '';
      let v = seen.get(value);
      if (v === undefined) seen.set(value, (v = seen.size));
      if (n === keyOf.length) {
        keyOf = grow(keyOf);
        valueOf = grow(valueOf);
      }
      keyOf[n] = k;
      valueOf[n++] = v;
    }
    starts[i + 1] = n;
  }
  const keys = [...seenKeys.keys()].sort(compareStrings);
  const keyIds = new Int32Array(keys.length);
  const valueIds: Int32Array[] = [];
  const values = keys.map((key, id): Map<string, number> => {
    const k = seenKeys.get(key) as number;
    keyIds[k] = id;
    const seen = seenValues[k] as Map<string, number>;
    const ids = (valueIds[k] = new Int32Array(seen.size));
    const sorted = [...seen.keys()].sort(compareStrings);
    return new Map(sorted.map((value, position) => [value, (ids[seen.get(value) as number] = position + 1)]));
  });
  for (let j = 0; j < n; j++) {
    const k = keyOf[j] as number;
    keyOf[j] = keyIds[k] as number;
    valueOf[j] = (valueIds[k] as Int32Array)[valueOf[j] as number] as number;
  }
  return { keys, values, keyOf: keyOf.slice(0, n), valueOf: valueOf.slice(0, n), starts };
}

function grow(words: Int32Array): Int32Array<ArrayBuffer> {
  const grown = new Int32Array(words.length * 2);
  grown.set(words);
  return grown;
}
