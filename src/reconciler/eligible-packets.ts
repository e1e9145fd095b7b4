import type { Packet } from '../schema/fleet.js';
import { labelValue } from '../schema/labels.js';
import type { CompiledApp, FleetIndex } from './index-fleet.js';
import { rangeTest } from './select-packet.js';

/**
 * The packets an app can select (see `eligiblePackets`), best first, and what each asks of a device:
 * packet `i` is a candidate when `codes[keys[j]] === values[j]` for every `j` from `starts[i]` to
 * `starts[i + 1]` (a device's value ids per packet key, see `classKeyOf`).
 */
export interface Eligible {
  /** Their positions in `fleet.packets`, and their tiers: packets of one tier rank alike (a tie at the top is ambiguous). */
  readonly positions: Int32Array;
  readonly tiers: Int32Array;
  readonly keys: Int32Array;
  readonly values: Int32Array;
  readonly starts: Int32Array;
}

/**
 * Rule 4's candidates of an app before a device is known, best first: of the packets of its name, those
 * that agree with every label the app pins and, with a `version` range, whose `version` satisfies it
 * (then `version` is not compared as a label); ranked highest version first under a range, then most
 * labels, ties in the fleet's order. A device's candidates are those whose other labels (every key the
 * app does not pin, except `version` under a range) all equal the device's: the merged labels, the
 * device's overlaid by the pins, are the device's there.
 */
export function eligiblePackets(index: FleetIndex, compiled: CompiledApp): Eligible {
  const { app } = compiled;
  const { keys: packetKeys, values: packetValues, keyOf: keys, valueOf: values, starts } = index.labels;
  const { versionKey, versionRanks } = index;
  const ranged = app.version !== undefined;
  const satisfies = rangeTest(app);
  // Per key: the value id the app pins (-1: a value no packet has), or 0.
  const pins = new Int32Array(packetKeys.length);
  for (let k = 0; k < packetKeys.length; k++) {
    const value = labelValue(app.labels, packetKeys[k] as string);
    if (value !== undefined) pins[k] = packetValues[k]?.get(value) ?? -1;
  }
  const found: number[] = [];
  const rank: number[] = [];
  for (const i of index.packetsOf[compiled.nameId] ?? []) {
    let fits = true;
    let version = 0;
    for (let j = starts[i] as number; fits && j < (starts[i + 1] as number); j++) {
      const k = keys[j] as number;
      if (ranged && k === versionKey) version = values[j] as number;
      else fits = pins[k] === 0 || pins[k] === values[j];
    }
    const packet = index.fleet.packets[i] as Packet;
    if (!fits || (satisfies && !satisfies(labelValue(packet.labels, 'version')))) continue;
    found.push(i);
    rank.push(versionRanks[version] as number);
  }
  const order = found
    .map((_, f) => f)
    .sort(
      (a, b) =>
        (rank[b] as number) - (rank[a] as number) ||
        labelCount(starts, found[b] as number) - labelCount(starts, found[a] as number) ||
        a - b,
    );
  const deviceKeys: number[] = [];
  const deviceValues: number[] = [];
  const from = new Int32Array(order.length + 1);
  order.forEach((f, n) => {
    const i = found[f] as number;
    for (let j = starts[i] as number; j < (starts[i + 1] as number); j++) {
      const k = keys[j] as number;
      if (pins[k] !== 0 || (ranged && k === versionKey)) continue;
      deviceKeys.push(k);
      deviceValues.push(values[j] as number);
    }
    from[n + 1] = deviceKeys.length;
  });
  return {
    positions: Int32Array.from(order, (f) => found[f] as number),
    tiers: tiersOf(order.map((f) => [rank[f] as number, labelCount(starts, found[f] as number)] as const)),
    keys: Int32Array.from(deviceKeys),
    values: Int32Array.from(deviceValues),
    starts: from,
  };
}

/** Tiers of sorted (version rank, label count) pairs: equal pairs, equal tiers. */
function tiersOf(sorted: readonly (readonly [number, number])[]): Int32Array {
  const tiers = new Int32Array(sorted.length);
  for (let i = 1; i < sorted.length; i++) {
    const [rank, count] = sorted[i] as readonly [number, number];
    const [before, counted] = sorted[i - 1] as readonly [number, number];
    tiers[i] = (tiers[i - 1] as number) + (rank === before && count === counted ? 0 : 1);
  }
  return tiers;
}

function labelCount(starts: Int32Array, i: number): number {
  return (starts[i + 1] as number) - (starts[i] as number);
}
