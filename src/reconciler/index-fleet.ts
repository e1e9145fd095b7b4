import type { App, Device, Fleet, Labels, Packet, Spec } from '../schema/fleet.js';
import { labelsKey } from '../schema/labels.js';
import { inRollout } from './rollout-bucket.js';
import { isGlob, matchLabelValue } from './match-label-value.js';
import { rankCandidates } from './select-packet.js';

interface CompiledSpec {
  spec: Spec;
  tests: [key: string, test: (value: string) => boolean][];
}

/**
 * A fleet indexed once for resolving many devices: specs by an exact target value, packets by name, and a
 * cache of ranked candidates keyed by the app and only those device labels that packets of the app's name
 * mention. Results are identical to scanning every spec and packet for every device; only faster.
 */
export interface FleetIndex {
  readonly fleet: Fleet;
  readonly packetsByName: ReadonlyMap<string, readonly Packet[]>;
  /** Label keys mentioned by any packet of a name: the only device labels that can change its selection. */
  readonly keysByName: ReadonlyMap<string, readonly string[]>;
  readonly universal: readonly CompiledSpec[];
  readonly byExact: ReadonlyMap<string, ReadonlyMap<string, readonly CompiledSpec[]>>;
  readonly byGlob: ReadonlyMap<string, readonly CompiledSpec[]>;
  readonly globHits: Map<string, readonly CompiledSpec[]>;
  readonly candidates: Map<string, readonly Packet[]>;
  readonly appKeys: WeakMap<App, string>;
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

export function indexFleet(fleet: Fleet): FleetIndex {
  const packetsByName = new Map<string, Packet[]>();
  for (const packet of fleet.packets) push(packetsByName, packet.name, packet);
  const keysByName = new Map<string, string[]>();
  for (const [name, packets] of packetsByName) {
    keysByName.set(name, [...new Set(packets.flatMap((p) => Object.keys(p.labels)))].sort());
  }

  const universal: CompiledSpec[] = [];
  const byExact = new Map<string, Map<string, CompiledSpec[]>>();
  const byGlob = new Map<string, CompiledSpec[]>();
  for (const spec of fleet.specs) {
    const entries = Object.keys(spec.target)
      .sort()
      .map((key) => [key, spec.target[key] ?? ''] as const);
    const compiled: CompiledSpec = { spec, tests: entries.map(([k, v]) => [k, matchLabelValue(v)]) };
    // Anchor each spec on one exact key when it has one, so a device only looks at specs that can apply.
    const anchor = entries.find(([, v]) => !isGlob(v));
    const first = entries[0];
    if (anchor) {
      let values = byExact.get(anchor[0]);
      if (!values) byExact.set(anchor[0], (values = new Map<string, CompiledSpec[]>()));
      push(values, anchor[1], compiled);
    } else if (first) push(byGlob, first[0], compiled);
    else universal.push(compiled);
  }
  return {
    fleet,
    packetsByName,
    keysByName,
    universal,
    byExact,
    byGlob,
    globHits: new Map(),
    candidates: new Map(),
    appKeys: new WeakMap(),
  };
}

/** Rules 1 and 2: the specs whose target matches the device and whose rollout includes it, sorted by id. */
export function applyingSpecs(index: FleetIndex, device: Device): Spec[] {
  const found: CompiledSpec[] = [...index.universal];
  for (const key in device.labels) {
    const value = device.labels[key] ?? '';
    const exact = index.byExact.get(key)?.get(value);
    if (exact) found.push(...exact);
    const globbed = index.byGlob.get(key);
    if (globbed) {
      const cacheKey = `${key}\u0000${value}`;
      let hits = index.globHits.get(cacheKey);
      if (!hits) index.globHits.set(cacheKey, (hits = globbed.filter((c) => c.tests[0]?.[1](value))));
      found.push(...hits);
    }
  }
  const applying = found
    .filter(({ spec, tests }) => {
      for (const [key, test] of tests) {
        if (!Object.hasOwn(device.labels, key) || !test(device.labels[key] ?? '')) return false;
      }
      return spec.rollout === undefined || inRollout(spec.id, device.id, spec.rollout.percent);
    })
    .map((c) => c.spec);
  return applying.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** Ranked candidates (rule 4) for an app on a device, memoised on the labels that can change them. */
export function candidatesFor(index: FleetIndex, app: App, labels: Labels): readonly Packet[] {
  let appKey = index.appKeys.get(app);
  if (appKey === undefined) {
    appKey = `${app.name}\u0000${app.version ?? ''}\u0000${labelsKey(app.labels)}`;
    index.appKeys.set(app, appKey);
  }
  let key = appKey;
  for (const k of index.keysByName.get(app.name) ?? []) {
    if (Object.hasOwn(app.labels, k)) continue;
    key += Object.hasOwn(labels, k) ? `\u0000${labels[k]}` : '\u0000\u0001';
  }
  let ranked = index.candidates.get(key);
  if (!ranked) {
    ranked = rankCandidates(index.packetsByName.get(app.name) ?? [], app, labels);
    index.candidates.set(key, ranked);
  }
  return ranked;
}
