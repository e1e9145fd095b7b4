import { compareStrings } from '../schema/compare-strings.js';
import type { App, Device, Fleet, Labels, Packet, Spec } from '../schema/fleet.js';
import { labelsKey, labelValue } from '../schema/labels.js';
import { inRollout } from './rollout-bucket.js';
import { indexTargets, matchTargets, type TargetIndex } from './index-targets.js';
import { indexPacketLabels, type PacketLabels } from './index-packet-labels.js';
import type { DesiredPacket } from './desired-packet.js';
import type { Closure } from './requires-closure.js';
import type { Joined, Outcome, SharedDesired } from './resolve-desired-state.js';
import { eligiblePackets, type Eligible } from './eligible-packets.js';
import { rankVersions, selectTop, type Selection } from './select-packet.js';

/** The ranked candidates of one app for the devices with one pick key (see `pickKeyOf`), and the pick of rule 4 among them. */
export interface Pick {
  readonly ranked: readonly Packet[];
  readonly selection: Selection;
  /** The selected packet's position in `fleet.packets` (-1: none is). */
  readonly position: number;
}

/**
 * An app compiled against the fleet. Devices that agree on the label values packets of the app's name
 * use (a value no such packet uses counts as absent) get the same candidates, so picks are memoised on
 * one number that encodes exactly those values.
 */
export interface CompiledApp {
  readonly app: App;
  readonly nameId: number;
  /** Ids (see `PacketLabels`) of the keys that can change the pick, and their strides. */
  readonly keys: readonly number[];
  readonly strides: readonly number[];
  /** Per key: global value id → the value's class among this name's packets (0: no packet uses it). */
  readonly classes: readonly Int32Array[];
  /** Picks by encoded labels; undefined when the combinations are too many: then every pick is computed. */
  readonly picks: (Pick | undefined)[] | undefined;
  /** Made on the first pick. */
  eligible: Eligible | undefined;
}

/** One app of one spec: what the join (rule 3) works with. */
export interface Request {
  /** Position in `FleetIndex.requests` (specs in id order, then their apps in order). */
  readonly id: number;
  readonly spec: CompiledSpec;
  readonly app: CompiledApp;
  /** The desired packet this request alone makes (shared by every device it applies to), by packet. */
  readonly shared: Map<Packet, SharedDesired>;
  /**
   * What it makes on a device, by its app's pick key (see `pickKeyOf`): made on first use, empty when
   * the app has too many label combinations or the index's budget is spent (then nothing is kept).
   */
  outcomes: (Outcome | undefined)[] | undefined;
}

export interface CompiledSpec {
  readonly spec: Spec;
  /** Position in id order: the spec's bit in target bitsets, and how applying specs sort. */
  readonly order: number;
  readonly requests: readonly Request[];
}

/**
 * Devices whose labels agree on every key a packet has (a value no packet uses counts as absent) get the
 * same outcome from every request: they form one class, whose table the join reads by request id.
 */
export interface DeviceClass {
  /** Its key in `FleetIndex.classes`. */
  readonly key: number | string;
  /** The labels of its devices as value ids per packet key (see `encodeLabels`). */
  readonly codes: Int32Array;
  /** Per request id: its outcome on the class, filled on first use. */
  readonly outcomes: (Outcome | undefined)[];
  /** Joins of requests of equal priority by their ids in mixed radix (see `resolveInClass`); null: they do not agree. */
  readonly joins: Map<number, Joined | null>;
}

/**
 * What the requires closure of a packet can depend on: the names its requires reach (through any packet
 * of each name), sorted, and the compiled requires of every packet of those names and of its own.
 */
export interface Reach {
  readonly names: Int32Array;
  readonly apps: readonly CompiledApp[];
}

/** Per-call working memory of the join, kept in the index so that a device allocates nothing for it. */
export interface Scratch {
  /** Orders of the specs that apply to the device (see `matchSpecOrders`). */
  readonly applying: Int32Array;
  /** Target bitset of the device. */
  readonly targeted: Uint32Array;
  /** Per name: the first request of the top priority (-1: none yet), and how many ask at that priority. */
  readonly top: Int32Array;
  readonly count: Int32Array;
  /** Per name: the ids of the requests at the top priority in mixed radix (see `resolveInClass`). */
  readonly joinKeys: Float64Array;
  /** Names asked for by the device, as a bitset over name ids (cleared while read). */
  readonly asked: Int32Array;
  /** The device's label values as value ids per packet key (see `encodeLabels`). */
  readonly codes: Int32Array;
  /** Fallback warnings of the device so far. */
  readonly warnings: string[];
  /** Positions in `desired` of explicit packets that require something. */
  readonly requiring: Int32Array;
  /** Requests of one name at one priority (see `requestsOf`). */
  readonly list: Int32Array;
  /** The device's explicit choices so far: desired packets, their positions in `fleet.packets`, their names' ids. */
  readonly desired: DesiredPacket[];
  readonly positions: Int32Array;
  readonly chosen: Int32Array;
  /** The key of its requires closure (see `closureKey`). */
  readonly key: Int32Array;
}

/**
 * A fleet indexed once for resolving many devices: specs by target bitsets, packets by name, compiled
 * apps with memoised picks, requests with memoised outcomes. Results are identical to scanning
 * every spec and packet for every device (bench/reference-resolve.ts is that scan); only faster. Not
 * safe to share across threads.
 */
export interface FleetIndex {
  readonly fleet: Fleet;
  /** Every packet or app name, sorted; a name's id is its position. */
  readonly names: readonly string[];
  readonly nameIds: ReadonlyMap<string, number>;
  /** Every packet's labels as ids (packets by position in `fleet.packets`), and per name id its packets' positions. */
  readonly labels: PacketLabels;
  readonly packetsOf: readonly Int32Array[];
  /** The id of the `version` key (-1: no packet has it), and per value id of it the version's rank (see `rankVersions`). */
  readonly versionKey: number;
  readonly versionRanks: Int32Array;
  /** Specs in id order. */
  readonly specs: readonly CompiledSpec[];
  /** Their rollout percents (Infinity: no rollout, which is every device). */
  readonly rollouts: Float64Array;
  readonly targets: TargetIndex;
  /** Every request, by id; a spec's requests are ids `specFirst[order]` to `specFirst[order + 1]`. */
  readonly requests: readonly Request[];
  readonly specFirst: Int32Array;
  /** Per request id: its app's name id and its spec's priority, side by side for the join. */
  readonly requestNames: Int32Array;
  readonly requestPriorities: Float64Array;
  /** Outcome slots (see `Request.outcomes`) requests may still allocate. */
  outcomeBudget: number;
  /** Device classes by `classKeyOf`. */
  readonly classes: Map<number | string, DeviceClass>;
  /** Request slots the classes may still allocate before the class memo is emptied. */
  classBudget: number;
  /** Requests of equal priority that agree (see `joinAgreeing`), by their ids; one per packet they select. */
  readonly joined: Map<number | string, Joined[]>;
  /** The compiled `requires` of each packet that requires something. */
  readonly requires: ReadonlyMap<Packet, readonly CompiledApp[]>;
  /** By packet position, for those that require something: what their requires can reach (null: too much), made on demand. */
  readonly reach: (Reach | null | undefined)[];
  /** Requires closures by the hash of their `closureKey`. */
  readonly closures: Map<number, Closure[]>;
  readonly scratch: Scratch;
}

/** Outcome slots an index memoises at most, per request and per class (8 bytes each, plus the outcomes). */
const OUTCOME_BUDGET = 1 << 22;
const CLASS_BUDGET = 1 << 21;

/** Label combinations an app may be memoised over (packets of one name with many varied keys exceed it). */
const MAX_COMBINATIONS = 1 << 16;

function hasLabels(labels: Labels): boolean {
  for (const key in labels) if (Object.hasOwn(labels, key)) return true;
  return false;
}

export function indexFleet(fleet: Fleet): FleetIndex {
  const labels = indexPacketLabels(fleet.packets);
  const allNames = new Set<string>();
  for (const packet of fleet.packets) {
    allNames.add(packet.name);
    for (const app of packet.requires) allNames.add(app.name);
  }
  for (const spec of fleet.specs) for (const app of spec.apps) allNames.add(app.name);
  const names = [...allNames].sort(compareStrings);
  const nameIds = new Map(names.map((n, i) => [n, i]));
  const positions = names.map((): number[] => []);
  for (let i = 0; i < fleet.packets.length; i++)
    positions[nameIds.get((fleet.packets[i] as Packet).name) as number]?.push(i);
  const packetsOf = positions.map((list) => Int32Array.from(list));
  const { keyOf, valueOf, starts } = labels;
  const versionKey = labels.keys.indexOf('version');

  // Per name and key id: value id → class among the name's packets (0: none has it), and how many classes.
  const tables = new Map<number, { table: Int32Array; used: number }>();
  const valueClasses = (nameId: number, k: number) => {
    const tableKey = nameId * labels.keys.length + k;
    let found = tables.get(tableKey);
    if (!found) {
      // Classes in the order the name's packets first use their values.
      const table = new Int32Array((labels.values[k]?.size ?? 0) + 1);
      let used = 0;
      for (const i of packetsOf[nameId] ?? []) {
        for (let j = starts[i] as number; j < (starts[i + 1] as number); j++) {
          const value = valueOf[j] as number;
          if (keyOf[j] === k && table[value] === 0) table[value] = ++used;
        }
      }
      tables.set(tableKey, (found = { table, used }));
    }
    return found;
  };
  // Per name id: the ids of the keys its packets have, ascending.
  const keysOf = (nameId: number): number[] => {
    const seen = new Set<number>();
    for (const i of packetsOf[nameId] ?? [])
      for (let j = starts[i] as number; j < (starts[i + 1] as number); j++) seen.add(keyOf[j] as number);
    return [...seen].sort((a, b) => a - b);
  };

  // Identical apps (same name, pins and range) in different specs compile once and share their picks.
  const compiledApps = new Map<string, CompiledApp>();
  const compileApp = (app: App): CompiledApp => {
    const appKey = `${app.name}\u0000${app.version ?? ''}\u0000${hasLabels(app.labels) ? labelsKey(app.labels) : ''}`;
    let compiled = compiledApps.get(appKey);
    if (!compiled) compiledApps.set(appKey, (compiled = compileNew(app)));
    return compiled;
  };
  const compileNew = (app: App): CompiledApp => {
    // A key the app pins cannot change the pick, nor can `version` under a range (rule 4).
    const nameId = nameIds.get(app.name) ?? 0;
    const keys = keysOf(nameId).filter((k) => {
      const key = labels.keys[k] as string;
      return labelValue(app.labels, key) === undefined && !(app.version !== undefined && key === 'version');
    });
    let stride = 1;
    const strides: number[] = [];
    const classes = keys.map((k) => {
      const { table, used } = valueClasses(nameId, k);
      strides.push(stride);
      stride *= used + 1;
      return table;
    });
    const picks = stride <= MAX_COMBINATIONS ? new Array<Pick | undefined>(stride) : undefined;
    return { app, nameId, keys, strides, classes, picks, eligible: undefined };
  };

  const specs = [...fleet.specs].sort((a, b) => compareStrings(a.id, b.id));
  const requests: Request[] = [];
  const specFirst = new Int32Array(specs.length + 1);
  const compiledSpecs = specs.map((spec, order): CompiledSpec => {
    specFirst[order] = requests.length;
    const own: Request[] = [];
    const compiled: CompiledSpec = { spec, order, requests: own };
    for (const app of spec.apps) {
      const request: Request = {
        id: requests.length,
        spec: compiled,
        app: compileApp(app),
        shared: new Map(),
        outcomes: undefined,
      };
      own.push(request);
      requests.push(request);
    }
    return compiled;
  });
  specFirst[specs.length] = requests.length;
  const targets = indexTargets(specs);
  return {
    fleet,
    names,
    nameIds,
    labels,
    packetsOf,
    versionKey,
    versionRanks: rankVersions(labels.values[versionKey]),
    specs: compiledSpecs,
    rollouts: Float64Array.from(specs, (spec) => spec.rollout?.percent ?? Infinity),
    targets,
    requests,
    specFirst,
    requestNames: Int32Array.from(requests, (r) => r.app.nameId),
    requestPriorities: Float64Array.from(requests, (r) => r.spec.spec.priority),
    outcomeBudget: OUTCOME_BUDGET,
    classes: new Map(),
    classBudget: CLASS_BUDGET,
    joined: new Map(),
    requires: new Map(
      fleet.packets.filter((p) => p.requires.length > 0).map((p) => [p, p.requires.map(compileApp)]),
    ),
    reach: new Array<Reach | null | undefined>(fleet.packets.length),
    closures: new Map(),
    scratch: {
      applying: new Int32Array(specs.length),
      targeted: new Uint32Array(targets.words),
      top: new Int32Array(names.length).fill(-1),
      count: new Int32Array(names.length),
      joinKeys: new Float64Array(names.length),
      asked: new Int32Array(Math.ceil(names.length / 32)),
      desired: [],
      positions: new Int32Array(names.length),
      codes: new Int32Array(labels.keys.length),
      list: new Int32Array(requests.length),
      requiring: new Int32Array(names.length),
      warnings: [],
      chosen: new Int32Array(names.length),
      key: new Int32Array(1024),
    },
  };
}

/** Rules 1 and 2: the specs whose target matches the device and whose rollout includes it, in id order. */
export function applyingSpecs(index: FleetIndex, device: Device): Spec[] {
  return matchSpecs(index, device).map((c) => c.spec);
}

/** `applyingSpecs`, compiled. */
export function matchSpecs(index: FleetIndex, device: Device): CompiledSpec[] {
  const applying = index.scratch.applying;
  const count = matchSpecOrders(index, device);
  const specs: CompiledSpec[] = [];
  for (let i = 0; i < count; i++) specs.push(index.specs[applying[i] as number] as CompiledSpec);
  return specs;
}

/**
 * Rules 1 and 2 into `out` from `offset` (default: `index.scratch.applying`; room for every spec is
 * needed): the orders of the applying specs, ascending; returns their count. Only specs whose target
 * matched pay for a rollout bucket.
 */
export function matchSpecOrders(
  index: FleetIndex,
  device: Device,
  out: Int32Array = index.scratch.applying,
  offset = 0,
): number {
  const { targeted } = index.scratch;
  const { rollouts } = index;
  matchTargets(index.targets, device.labels, targeted);
  let count = offset;
  for (let w = 0; w < targeted.length; w++) {
    let bits = targeted[w] as number;
    while (bits !== 0) {
      const low = bits & -bits;
      bits ^= low;
      const order = (w << 5) + 31 - Math.clz32(low);
      const percent = rollouts[order] as number;
      if (percent >= 100 || inRollout((index.specs[order] as CompiledSpec).spec.id, device.id, percent))
        out[count++] = order;
    }
  }
  return count - offset;
}

/** The class of devices with these labels (see `DeviceClass`), made on first sight. */
export function classOf(index: FleetIndex, labels: Labels): DeviceClass {
  const key = classKeyOf(index, labels);
  let found = index.classes.get(key);
  if (!found) {
    const slots = index.requests.length;
    if (index.classBudget < slots && index.classes.size > 0) {
      // Too many classes to keep: start over rather than grow without bound.
      index.classes.clear();
      index.classBudget = CLASS_BUDGET;
    }
    index.classBudget -= slots;
    found = {
      key,
      codes: index.scratch.codes.slice(),
      outcomes: new Array<Outcome | undefined>(slots),
      joins: new Map(),
    };
    index.classes.set(key, found);
  }
  return found;
}

/**
 * The key of the class of devices with these labels: equal keys, equal classes. Leaves the labels' codes
 * in `index.scratch.codes`.
 */
export function classKeyOf(index: FleetIndex, labels: Labels): number | string {
  const codes = index.scratch.codes;
  encodeLabels(index, labels, codes);
  let key = 0;
  let radix = 1;
  for (let i = 0; i < codes.length; i++) {
    key += (codes[i] as number) * radix;
    radix *= (index.labels.values[i]?.size ?? 0) + 1;
    if (radix > Number.MAX_SAFE_INTEGER) return codes.join(',');
  }
  return key;
}

/** Writes into `codes` the device's label values as value ids per packet key (0: absent, or a value no packet uses). */
function encodeLabels(index: FleetIndex, labels: Labels, codes: Int32Array): void {
  const { keys, values } = index.labels;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string;
    const value = labelValue(labels, key);
    codes[i] = value === undefined ? 0 : (values[i]?.get(value) ?? 0);
  }
}

/**
 * The pick key of a compiled app on a device whose labels are `codes`: devices with equal keys have the
 * same candidates (mixed radix over the values the app's packets use).
 */
export function pickKeyOf(compiled: CompiledApp, codes: Int32Array): number {
  let key = 0;
  for (let i = 0; i < compiled.keys.length; i++) {
    const code = codes[compiled.keys[i] as number] as number;
    key += ((compiled.classes[i] as Int32Array)[code] as number) * (compiled.strides[i] as number);
  }
  return key;
}

/** The outcome table of a request (see `Request.outcomes`), made on first use. */
export function outcomesOf(index: FleetIndex, request: Request): (Outcome | undefined)[] {
  let table = request.outcomes;
  if (table === undefined) {
    const size = request.app.picks?.length ?? Infinity;
    if (size > index.outcomeBudget) table = [];
    else {
      index.outcomeBudget -= size;
      table = new Array<Outcome | undefined>(size);
    }
    request.outcomes = table;
  }
  return table;
}

/** Rule 4 for a compiled app on a device whose labels are `codes`, memoised on the values that can change it. */
export function pickFor(index: FleetIndex, compiled: CompiledApp, codes: Int32Array): Pick {
  return pickAt(index, compiled, pickKeyOf(compiled, codes), codes);
}

/** `pickFor` when the pick key is known. */
export function pickAt(index: FleetIndex, compiled: CompiledApp, key: number, codes: Int32Array): Pick {
  let pick = compiled.picks?.[key];
  if (!pick) {
    const { app } = compiled;
    const { positions, tiers, keys, values, starts } = (compiled.eligible ??= eligiblePackets(
      index,
      compiled,
    ));
    const ranked: Packet[] = [];
    let first = -1;
    let tied = 0;
    for (let i = 0; i < positions.length; i++) {
      let fits = true;
      for (let j = starts[i] as number; fits && j < (starts[i + 1] as number); j++)
        fits = codes[keys[j] as number] === values[j];
      if (!fits) continue;
      if (first < 0) first = i;
      if (tiers[i] === tiers[first]) tied++;
      ranked.push(index.fleet.packets[positions[i] as number] as Packet);
    }
    const selection = selectTop(ranked, tied, app);
    pick = { ranked, selection, position: selection.ok ? (positions[first] as number) : -1 };
    if (compiled.picks) compiled.picks[key] = pick;
  }
  return pick;
}
