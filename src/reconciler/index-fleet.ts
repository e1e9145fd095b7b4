import { compareStrings } from '../schema/compare-strings.js';
import type { App, Device, Fleet, Labels, Packet, Spec } from '../schema/fleet.js';
import { labelsKey } from '../schema/labels.js';
import { inRollout } from './rollout-bucket.js';
import { isGlob, matchLabelValue } from './match-label-value.js';
import type { SharedDesired } from './resolve-desired-state.js';
import { pickTop, rankCandidates, type Selection } from './select-packet.js';

/** The ranked candidates of one app for one class of devices, and the pick of rule 4 among them. */
export interface Pick {
  ranked: readonly Packet[];
  selection: Selection;
}

/**
 * An app compiled against the fleet. Devices that agree on the label values packets of the app's name
 * use (a value no such packet uses counts as absent) get the same candidates, so picks are memoised on
 * one number that encodes exactly those values.
 */
export interface CompiledApp {
  readonly app: App;
  readonly nameId: number;
  /** Indexes into `FleetIndex.packetKeys` of the keys that can change the pick, and their strides. */
  readonly keys: readonly number[];
  readonly strides: readonly number[];
  /** Per key: global value id → the value's class among this name's packets (0: no packet uses it). */
  readonly classes: readonly Int32Array[];
  /** Picks by encoded labels; undefined when the combinations are too many: then every pick is computed. */
  readonly picks: (Pick | undefined)[] | undefined;
}

/** One app of one spec: what the join (rule 3) works with. */
export interface Request {
  readonly spec: CompiledSpec;
  readonly app: CompiledApp;
  /** `[this]`, made once: most apps are asked for by one spec. */
  readonly alone: readonly Request[];
  /** The desired packet this request alone makes (shared by every device it applies to), by packet. */
  readonly shared: Map<Packet, SharedDesired>;
}

export interface CompiledSpec {
  readonly spec: Spec;
  /** Position in id order, so applying specs sort by a number. */
  readonly order: number;
  /** The target's keys and value tests that the index does not already guarantee. */
  readonly keys: readonly string[];
  readonly tests: readonly ((value: string) => boolean)[];
  readonly requests: readonly Request[];
}

/**
 * A fleet indexed once for resolving many devices: specs by an exact target value, packets by name,
 * compiled apps with memoised picks. Results are identical to scanning every spec and packet for every
 * device (bench/reference-resolve.ts is that scan); only faster. Not safe to share across threads.
 */
export interface FleetIndex {
  readonly fleet: Fleet;
  /** Every packet or app name, sorted; a name's id is its position. */
  readonly names: readonly string[];
  readonly packetsByName: ReadonlyMap<string, readonly Packet[]>;
  /** Label keys any packet has, and per key the values packets use (value id = position + 1). */
  readonly packetKeys: readonly string[];
  readonly packetValues: readonly ReadonlyMap<string, number>[];
  readonly universal: readonly CompiledSpec[];
  /** Specs by the exact part of their target: per set of keys, the specs under their values joined by NUL. */
  readonly byExact: readonly {
    keys: readonly string[];
    specs: ReadonlyMap<string, readonly CompiledSpec[]>;
  }[];
  readonly byGlob: ReadonlyMap<string, readonly { spec: CompiledSpec; test: (value: string) => boolean }[]>;
  /** Per glob-anchor key and device value: the glob-anchored specs whose anchor matches. */
  readonly globHits: Map<string, Map<string, readonly CompiledSpec[]>>;
  /** A packet's position in `fleet.packets`. */
  readonly packetIds: ReadonlyMap<Packet, number>;
  /** The compiled `requires` of each packet. */
  readonly requires: ReadonlyMap<Packet, readonly CompiledApp[]>;
  /** One slot per name for the join of one device; empty between calls. */
  readonly scratch: (Request | Request[] | undefined)[];
}

/** Label combinations an app may be memoised over (packets of one name with many varied keys exceed it). */
const MAX_COMBINATIONS = 1 << 16;

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

export function indexFleet(fleet: Fleet): FleetIndex {
  const packetsByName = new Map<string, Packet[]>();
  const keysByName = new Map<string, Set<string>>();
  const values = new Map<string, Set<string>>();
  for (const packet of fleet.packets) {
    push(packetsByName, packet.name, packet);
    const keys = keysByName.get(packet.name) ?? new Set<string>();
    keysByName.set(packet.name, keys);
    for (const key in packet.labels) {
      keys.add(key);
      const seen = values.get(key) ?? new Set<string>();
      values.set(key, seen.add(packet.labels[key] ?? ''));
    }
  }
  const packetKeys = [...values.keys()].sort(compareStrings);
  const keyIndex = new Map(packetKeys.map((k, i) => [k, i]));
  const packetValues = packetKeys.map(
    (k) => new Map([...(values.get(k) ?? [])].sort(compareStrings).map((v, i) => [v, i + 1])),
  );
  const allNames = new Set(packetsByName.keys());
  for (const spec of fleet.specs) for (const app of spec.apps) allNames.add(app.name);
  for (const packet of fleet.packets) for (const app of packet.requires) allNames.add(app.name);
  const names = [...allNames].sort(compareStrings);
  const nameIds = new Map(names.map((n, i) => [n, i]));

  // Identical apps (same name, pins and range) in different specs share their memoised picks.
  const pickCaches = new Map<string, (Pick | undefined)[]>();
  const compileApp = (app: App): CompiledApp => {
    const appKey = `${app.name}\u0000${app.version ?? ''}\u0000${labelsKey(app.labels)}`;
    // A key the app pins cannot change the pick, nor can `version` under a range (rule 4).
    const keys = [...(keysByName.get(app.name) ?? [])]
      .filter((k) => !Object.hasOwn(app.labels, k) && !(app.version !== undefined && k === 'version'))
      .map((k) => keyIndex.get(k) ?? 0)
      .sort((a, b) => a - b);
    const packets = packetsByName.get(app.name) ?? [];
    let stride = 1;
    const strides: number[] = [];
    const classes = keys.map((k) => {
      const key = packetKeys[k] ?? '';
      const global = packetValues[k] ?? new Map<string, number>();
      const used = [
        ...new Set(packets.flatMap((p) => (Object.hasOwn(p.labels, key) ? [p.labels[key] ?? ''] : []))),
      ];
      const table = new Int32Array(global.size + 1);
      used.forEach((value, i) => (table[global.get(value) ?? 0] = i + 1));
      strides.push(stride);
      stride *= used.length + 1;
      return table;
    });
    let picks = pickCaches.get(appKey);
    if (!picks && stride <= MAX_COMBINATIONS)
      pickCaches.set(appKey, (picks = new Array<Pick | undefined>(stride)));
    return { app, nameId: nameIds.get(app.name) ?? 0, keys, strides, classes, picks };
  };

  const universal: CompiledSpec[] = [];
  const byExact = new Map<string, { keys: string[]; specs: Map<string, CompiledSpec[]> }>();
  const byGlob = new Map<string, { spec: CompiledSpec; test: (value: string) => boolean }[]>();
  const specs = [...fleet.specs].sort((a, b) => compareStrings(a.id, b.id));
  specs.forEach((spec, order) => {
    const entries = Object.keys(spec.target)
      .sort(compareStrings)
      .map((key) => [key, spec.target[key] ?? ''] as const);
    const requests: Request[] = [];
    // Index a spec under the exact values of its target (a device finds it with one lookup per key set);
    // a spec whose target is all globs is indexed under its first glob key.
    const exact = entries.filter(([, v]) => !isGlob(v));
    const globs = entries.filter(([, v]) => isGlob(v));
    const anchor = exact.length === 0 ? globs[0] : undefined;
    const rest = globs.filter((e) => e !== anchor);
    const compiled: CompiledSpec = {
      spec,
      order,
      keys: rest.map(([k]) => k),
      tests: rest.map(([, v]) => matchLabelValue(v)),
      requests,
    };
    for (const app of spec.apps) {
      const alone: Request[] = [];
      const request: Request = { spec: compiled, app: compileApp(app), alone, shared: new Map() };
      alone.push(request);
      requests.push(request);
    }
    if (exact.length > 0) {
      const keySet = exact.map(([k]) => k).join('\u0000');
      let group = byExact.get(keySet);
      if (!group)
        byExact.set(
          keySet,
          (group = { keys: exact.map(([k]) => k), specs: new Map<string, CompiledSpec[]>() }),
        );
      push(group.specs, exact.map(([, v]) => v).join('\u0000'), compiled);
    } else if (anchor) push(byGlob, anchor[0], { spec: compiled, test: matchLabelValue(anchor[1]) });
    else universal.push(compiled);
  });
  return {
    fleet,
    names,
    packetsByName,
    packetKeys,
    packetValues,
    universal,
    byExact: [...byExact.values()],
    byGlob,
    globHits: new Map(),
    packetIds: new Map(fleet.packets.map((p, i) => [p, i])),
    requires: new Map(fleet.packets.map((p) => [p, p.requires.map(compileApp)])),
    scratch: new Array<Request | Request[] | undefined>(names.length).fill(undefined),
  };
}

/** Rules 1 and 2: the specs whose target matches the device and whose rollout includes it, in id order. */
export function applyingSpecs(index: FleetIndex, device: Device): Spec[] {
  return matchSpecs(index, device).map((c) => c.spec);
}

/** `applyingSpecs`, compiled. */
export function matchSpecs(index: FleetIndex, device: Device): CompiledSpec[] {
  const labels = device.labels;
  const applying: CompiledSpec[] = [];
  // A candidate found through the index still needs its other target values and its rollout bucket.
  const consider = (candidates: readonly CompiledSpec[]) => {
    next: for (const compiled of candidates) {
      const { keys, tests, spec } = compiled;
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i] as string;
        const value = labels[key];
        if (
          value === undefined ||
          !Object.hasOwn(labels, key) ||
          !(tests[i] as (v: string) => boolean)(value)
        ) {
          continue next;
        }
      }
      if (spec.rollout === undefined || inRollout(spec.id, device.id, spec.rollout.percent))
        applying.push(compiled);
    }
  };
  consider(index.universal);
  group: for (const { keys, specs } of index.byExact) {
    let values = '';
    for (let i = 0; i < keys.length; i++) {
      const value = labels[keys[i] as string];
      if (value === undefined || !Object.hasOwn(labels, keys[i] as string)) continue group;
      values = i === 0 ? value : `${values}\u0000${value}`;
    }
    const exact = specs.get(values);
    if (exact) consider(exact);
  }
  for (const [key, globbed] of index.byGlob) {
    const value = labels[key];
    if (value === undefined || !Object.hasOwn(labels, key)) continue;
    let byValue = index.globHits.get(key);
    if (!byValue) index.globHits.set(key, (byValue = new Map<string, readonly CompiledSpec[]>()));
    let hits = byValue.get(value);
    if (!hits) byValue.set(value, (hits = globbed.filter((g) => g.test(value)).map((g) => g.spec)));
    consider(hits);
  }
  return applying.sort((a, b) => a.order - b.order);
}

/** The device's label values as value ids per packet key (0: absent, or a value no packet uses). */
export function encodeDevice(index: FleetIndex, labels: Labels): Int32Array {
  const { packetKeys, packetValues } = index;
  const codes = new Int32Array(packetKeys.length);
  for (let i = 0; i < packetKeys.length; i++) {
    const value = labels[packetKeys[i] as string];
    if (value !== undefined && Object.hasOwn(labels, packetKeys[i] as string))
      codes[i] = packetValues[i]?.get(value) ?? 0;
  }
  return codes;
}

/** Rule 4 for a compiled app on a device, memoised on the label values that can change it. */
export function pickFor(index: FleetIndex, compiled: CompiledApp, codes: Int32Array, labels: Labels): Pick {
  let key = 0;
  for (let i = 0; i < compiled.keys.length; i++) {
    const code = codes[compiled.keys[i] as number] as number;
    key += ((compiled.classes[i] as Int32Array)[code] as number) * (compiled.strides[i] as number);
  }
  let pick = compiled.picks?.[key];
  if (!pick) {
    const { app } = compiled;
    const ranked = rankCandidates(index.packetsByName.get(app.name) ?? [], app, labels);
    pick = { ranked, selection: pickTop(ranked, app, app.version !== undefined) };
    if (compiled.picks) compiled.picks[key] = pick;
  }
  return pick;
}
