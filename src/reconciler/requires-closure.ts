import { compareStrings } from '../schema/compare-strings.js';
import type { Packet } from '../schema/fleet.js';
import { dependsOn, describe, none, type DesiredPacket } from './desired-packet.js';
import { hashWords, sameWords } from './hash-words.js';
import { pickFor, pickKeyOf, type CompiledApp, type FleetIndex, type Reach } from './index-fleet.js';
import type { ResolveError } from './resolve-desired-state.js';
import { compareRank, pickTop } from './select-packet.js';

/** Rounds of the requires closure before it fails loudly. */
const MAX_REQUIRE_ROUNDS = 256;

/** Closures memoised per index, and names reachable through requires beyond which none is. */
const MAX_CLOSURES = 1 << 16;
const MAX_REACH = 256;

/**
 * Rule 5: add what chosen packets require, transitively. A name several packets require gets the best
 * packet that satisfies all of them; a packet an app chose must satisfy every requirement on it. Errors
 * count once the choices settle; choices that keep changing fail loudly.
 */
function closeRequires(
  index: FleetIndex,
  { requiring, explicitOf }: Explicit,
  codes: Int32Array,
  errors: ResolveError[],
): Map<number, Packet> {
  const candidates = (app: CompiledApp) => pickFor(index, app, codes).ranked;
  let derived = new Map<number, Packet>();
  // Rounds' choices as text, packets by an id of their own.
  const seen = new Set<string>();
  const ids = new Map<Packet, number>();
  const idOf = (packet: Packet): number => {
    let id = ids.get(packet);
    if (id === undefined) ids.set(packet, (id = ids.size));
    return id;
  };
  for (let round = 0; ; round++) {
    const wanted = new Map<number, { app: CompiledApp; by: Packet }[]>();
    const want = (packet: Packet) => {
      if (packet.requires.length === 0) return;
      for (const app of index.requires.get(packet) ?? []) {
        const list = wanted.get(app.nameId);
        if (list) list.push({ app, by: packet });
        else wanted.set(app.nameId, [{ app, by: packet }]);
      }
    };
    for (const packet of requiring) want(packet);
    for (const packet of derived.values()) want(packet);
    const next = new Map<number, Packet>();
    const roundErrors: ResolveError[] = [];
    for (const [nameId, reqs] of [...wanted].sort((a, b) => a[0] - b[0])) {
      const name = index.names[nameId] ?? '';
      const pinned = explicitOf(nameId);
      if (pinned) {
        const refused = reqs.find(({ app }) => !candidates(app).includes(pinned));
        if (refused) {
          const range = refused.app.app.version ? ` ${refused.app.app.version}` : '';
          roundErrors.push({
            code: 'conflicting_app',
            message: `${describe(refused.by)} requires ${name}${range}, but a spec selects ${describe(pinned)}`,
            app: name,
          });
        }
        continue;
      }
      const [head] = reqs;
      if (!head) continue;
      const what = () => `required by ${[...new Set(reqs.map((r) => r.by.name))].sort().join(', ')}`;
      const byVersion = reqs.some((r) => r.app.app.version !== undefined);
      const each = reqs.map(({ app }) => candidates(app));
      // One requirement: its candidates are ranked already, and its pick is memoised.
      const selection =
        reqs.length === 1
          ? pickFor(index, head.app, codes).selection
          : pickTop(
              each
                .reduce<Packet[]>((acc, list) => acc.filter((p) => list.includes(p)), [...(each[0] ?? [])])
                .sort((a, b) => compareRank(a, b, byVersion)),
              head.app.app,
              byVersion,
            );
      if (selection.ok) next.set(nameId, selection.packet);
      else if (
        selection.code === 'no_matching_packet' &&
        each.length > 1 &&
        each.every((l) => l.length > 0)
      ) {
        roundErrors.push({
          code: 'conflicting_app',
          message: `no packet of ${name} satisfies every requirement (${what()})`,
          app: name,
        });
      } else
        roundErrors.push({ code: selection.code, message: `${selection.message} (${what()})`, app: name });
    }
    // When neither the previous nor the new derived packets require anything, the next round would ask
    // exactly what this one asked: the choices are settled.
    const quiet = (packets: Map<number, Packet>) => {
      for (const p of packets.values()) if (p.requires.length > 0) return false;
      return true;
    };
    const settled =
      (quiet(derived) && quiet(next)) ||
      (next.size === derived.size && [...next].every(([n, p]) => derived.get(n) === p));
    derived = next;
    if (settled) {
      errors.push(...roundErrors);
      return derived;
    }
    const state = [...next].map(([n, p]) => `${n}:${idOf(p)}`).join(',');
    if (round + 1 >= MAX_REQUIRE_ROUNDS) {
      errors.push({
        code: 'dependency_cycle',
        message: `requires did not settle after ${MAX_REQUIRE_ROUNDS} rounds`,
      });
      return derived;
    }
    if (seen.has(state)) {
      const names = [...next.keys()].map((n) => index.names[n]).join(', ');
      errors.push({
        code: 'dependency_cycle',
        message: `requires keep changing their choices of ${names}: no stable set exists`,
      });
      return derived;
    }
    seen.add(state);
  }
}

/**
 * A dependency cycle among the chosen packets, as a path `a → b → a`, or undefined. `starts` are the
 * chosen packets that require something; `chosen` finds the chosen packet of a name.
 */
function findCycle(
  starts: readonly Packet[],
  chosen: (name: string) => Packet | undefined,
): string[] | undefined {
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (name: string): string[] | undefined => {
    if (state.get(name) === 'done') return undefined;
    if (state.get(name) === 'open') return [...path.slice(path.indexOf(name)), name];
    state.set(name, 'open');
    path.push(name);
    for (const dep of dependsOn(chosen(name) as Packet)) {
      if (!chosen(dep)) continue;
      const cycle = visit(dep);
      if (cycle) return cycle;
    }
    path.pop();
    state.set(name, 'done');
    return undefined;
  };
  // Only a packet that requires something can be on a cycle.
  for (const name of starts.map((p) => p.name).sort()) {
    const cycle = visit(name);
    if (cycle) return cycle;
  }
  return undefined;
}

/**
 * Rule 5 for one device, as data: the packets added, the explicit packets that get a `requiredBy`, or the
 * errors. It depends only on the explicit packets that require something, the explicit choices of the
 * names those can reach and the device's labels that can change a pick on the way (see `closureKey`),
 * so devices that agree on these share one.
 */
export interface Closure {
  /** What it was made for (see `closureKey`): closures whose keys hash alike are told apart by it. */
  readonly key: Int32Array;
  readonly errors: readonly ResolveError[];
  /** Derived packets, with their `requiredBy`, sorted by name, and the ids of their names. */
  readonly added: readonly DesiredPacket[];
  readonly addedNames: Int32Array;
  /** The ids of the names that chosen packets require, ascending, and the names of the packets requiring each. */
  readonly requiredNames: Int32Array;
  readonly requiredBy: readonly (readonly string[])[];
  /** Explicit desired packets with `requiredBy` filled in, made once per closure. */
  readonly withBy: Map<DesiredPacket, DesiredPacket>;
}

/** A device's explicit choices as rule 5 reads them: those that require something (in name order), and a lookup. */
interface Explicit {
  readonly requiring: readonly Packet[];
  readonly explicitOf: (nameId: number) => Packet | undefined;
}

function closeExplicit(index: FleetIndex, explicit: Explicit, codes: Int32Array, key: Int32Array): Closure {
  const errors: ResolveError[] = [];
  const derived = closeRequires(index, explicit, codes, errors);
  const failed = (found: ResolveError[]): Closure => ({
    key,
    errors: found,
    added: [],
    addedNames: new Int32Array(0),
    requiredNames: new Int32Array(0),
    requiredBy: [],
    withBy: new Map(),
  });
  if (errors.length > 0) return failed(errors);
  const chosen = (name: string): Packet | undefined => {
    const nameId = index.nameIds.get(name);
    return nameId === undefined ? undefined : (derived.get(nameId) ?? explicit.explicitOf(nameId));
  };
  // The chosen packets that require something, in name order (derived names are not explicit ones).
  const starts = [...explicit.requiring, ...[...derived.values()].filter((p) => p.requires.length > 0)].sort(
    (a, b) => compareStrings(a.name, b.name),
  );
  const cycle = findCycle(starts, chosen);
  if (cycle) {
    return failed([
      {
        code: 'dependency_cycle',
        message: `requires form a cycle: ${cycle.join(' → ')}`,
        app: cycle[0],
      },
    ]);
  }
  const requiredBy = new Map<number, string[]>();
  for (const packet of starts) {
    for (const dep of dependsOn(packet)) {
      const nameId = index.nameIds.get(dep) ?? -1;
      requiredBy.set(nameId, [...(requiredBy.get(nameId) ?? []), packet.name]);
    }
  }
  // Name ids are in name order.
  const addedNames = Int32Array.from(derived.keys()).sort();
  const added = Array.from(addedNames, (nameId) => {
    const packet = derived.get(nameId) as Packet;
    return { packet, specs: none, requiredBy: requiredBy.get(nameId) ?? none, dependsOn: dependsOn(packet) };
  });
  const requiredNames = Int32Array.from(requiredBy.keys()).sort();
  const by = Array.from(requiredNames, (nameId) => requiredBy.get(nameId) ?? none);
  return { key, errors, added, addedNames, requiredNames, requiredBy: by, withBy: new Map() };
}

/**
 * The device's explicit packets (`desired` with names `chosen`, `n` of them, in name order) merged with
 * what the closure adds, with `requiredBy` filled in.
 */
export function applyClosure(
  closure: Closure,
  desired: readonly DesiredPacket[],
  chosen: Int32Array,
  n: number,
): DesiredPacket[] {
  const { added, addedNames, requiredNames, requiredBy, withBy } = closure;
  const out = new Array<DesiredPacket>(n + added.length);
  let j = 0;
  let k = 0;
  // Explicit, added and required names are all ascending: one merge finds them.
  let r = 0;
  for (let i = 0; i < n; i++) {
    const nameId = chosen[i] as number;
    while (j < added.length && (addedNames[j] as number) < nameId) out[k++] = added[j++] as DesiredPacket;
    let filled = desired[i] as DesiredPacket;
    while (r < requiredNames.length && (requiredNames[r] as number) < nameId) r++;
    if (r < requiredNames.length && requiredNames[r] === nameId) {
      const known = withBy.get(filled);
      if (known) filled = known;
      else withBy.set(filled, (filled = { ...filled, requiredBy: requiredBy[r] as readonly string[] }));
    }
    out[k++] = filled;
  }
  while (j < added.length) out[k++] = added[j++] as DesiredPacket;
  return out;
}

/** What the closure can reach from a packet (see `Reach`); null past the cap. */
function reachOf(index: FleetIndex, position: number): Reach | null {
  let reach = index.reach[position];
  if (reach !== undefined) return reach;
  const packet = index.fleet.packets[position] as Packet;
  const seen = new Set<string>();
  const apps = new Set(index.requires.get(packet));
  const queue = packet.requires.map((r) => r.name);
  for (let i = 0; i < queue.length && seen.size <= MAX_REACH; i++) {
    const name = queue[i] as string;
    if (seen.has(name)) continue;
    seen.add(name);
    for (const at of index.packetsOf[index.nameIds.get(name) ?? -1] ?? []) {
      const p = index.fleet.packets[at] as Packet;
      for (const r of p.requires) queue.push(r.name);
      for (const app of index.requires.get(p) ?? []) apps.add(app);
    }
  }
  reach =
    seen.size > MAX_REACH
      ? null
      : { names: Int32Array.from(seen, (name) => index.nameIds.get(name) ?? -1).sort(), apps: [...apps] };
  index.reach[position] = reach;
  return reach;
}

/**
 * The key of a device's closure (see `Closure`) into `index.scratch.key`: for each explicit packet that
 * requires something (`requiring` of them), that packet, the explicit choice (or none) of every name it
 * can reach, and the pick key on the device (see `pickKeyOf`) of every app its closure may pick for.
 * Returns the key's length, or -1 when too much is reachable to make memoising worth it. `chosen` holds
 * the ids of the explicit choices' names, in order; `codes` are the device's labels.
 */
function closureKey(index: FleetIndex, codes: Int32Array, n: number, requiring: number): number {
  const { chosen, positions, key } = index.scratch;
  let length = 0;
  for (let i = 0; i < requiring; i++) {
    const position = positions[index.scratch.requiring[i] as number] as number;
    const reach = reachOf(index, position);
    if (reach === null || length + 1 + reach.names.length + reach.apps.length > key.length) return -1;
    key[length++] = position;
    for (const nameId of reach.names) {
      const at = positionOf(chosen, n, nameId);
      key[length++] = at < 0 ? -1 : (positions[at] as number);
    }
    for (const app of reach.apps) key[length++] = pickKeyOf(app, codes);
  }
  return length;
}

/** The device's explicit choices (see `Explicit`), from the scratch of `resolveInClass`, copied. */
function explicitChoices(index: FleetIndex, n: number, required: number): Explicit {
  const chosen = index.scratch.chosen.slice(0, n);
  const desired = index.scratch.desired.slice(0, n);
  const requiring = Array.from(
    index.scratch.requiring.subarray(0, required),
    (at) => (desired[at] as DesiredPacket).packet,
  );
  const explicitOf = (nameId: number): Packet | undefined => {
    const at = positionOf(chosen, n, nameId);
    return at < 0 ? undefined : (desired[at] as DesiredPacket).packet;
  };
  return { requiring, explicitOf };
}

/** Where `nameId` is among the first `n` of the sorted `chosen`, or -1. */
function positionOf(chosen: Int32Array, n: number, nameId: number): number {
  let lo = 0;
  let hi = n - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const id = chosen[mid] as number;
    if (id === nameId) return mid;
    if (id < nameId) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

/**
 * The requires closure of the device whose explicit choices are in the scratch (`n` of them, `required`
 * of which require something), memoised by its key (see `closureKey`).
 */
export function closureOf(index: FleetIndex, codes: Int32Array, n: number, required: number): Closure {
  const length = closureKey(index, codes, n, required);
  const { key: words } = index.scratch;
  const hash = length < 0 ? 0 : hashWords(words, 0, length);
  const known = length < 0 ? undefined : index.closures.get(hash);
  for (let i = 0; known !== undefined && i < known.length; i++) {
    const closure = known[i] as Closure;
    if (sameWords(closure.key, 0, closure.key.length, words, 0, length)) return closure;
  }
  const key = words.slice(0, Math.max(0, length));
  const closure = closeExplicit(index, explicitChoices(index, n, required), codes, key);
  if (length >= 0) {
    if (known) known.push(closure);
    else {
      if (index.closures.size >= MAX_CLOSURES) index.closures.clear();
      index.closures.set(hash, [closure]);
    }
  }
  return closure;
}
