import { compareStrings } from '../schema/compare-strings.js';
import type { Device, Packet } from '../schema/fleet.js';
import type { ErrorCode } from '../schema/gitfleet-error.js';
import { formatLabels } from '../schema/labels.js';
import {
  classOf,
  matchSpecOrders,
  outcomesOf,
  pickAt,
  pickFor,
  pickKeyOf,
  type CompiledApp,
  type DeviceClass,
  type FleetIndex,
  type Reach,
  type Request,
  FAILED,
  REQUIRES,
  WARNS,
} from './index-fleet.js';
import { compareRank, pickTop, type Selection } from './select-packet.js';

/**
 * One packet of a device's desired state, with why it is there. Shared between devices that have it for
 * the same reasons: treat as immutable.
 */
export interface DesiredPacket {
  readonly packet: Packet;
  /** Ids of the specs that ask for it (sorted). */
  readonly specs: readonly string[];
  /** Names of desired packets that require it (sorted). */
  readonly requiredBy: readonly string[];
  /** Names of the packets it requires (sorted). */
  readonly dependsOn: readonly string[];
}

/** Shared between the devices that fail for the same reason: treat as immutable. */
export interface ResolveError {
  readonly code: ErrorCode;
  readonly message: string;
  readonly app?: string;
}

/** A device's desired state (sorted by name), or every reason it has none (fail closed, rule 6). */
export type DesiredState =
  | { ok: true; device: Device; packets: readonly DesiredPacket[]; warnings: readonly string[] }
  | { ok: false; device: Device; errors: readonly ResolveError[] };

/** Rounds of the requires closure before it fails loudly. */
const MAX_REQUIRE_ROUNDS = 256;

/** Closures memoised per index, and names reachable through requires beyond which none is. */
const MAX_CLOSURES = 1 << 16;
const MAX_REACH = 256;

const none: readonly string[] = Object.freeze([]);

/**
 * A stable sort in place, as `Array.prototype.sort` is; an insertion sort for the few items a device has,
 * which spares the temporary copies the built-in makes.
 */
function sortSmall<T>(list: T[], compare: (a: T, b: T) => number): T[] {
  if (list.length > 16) return list.sort(compare);
  for (let i = 1; i < list.length; i++) {
    const item = list[i] as T;
    let j = i - 1;
    for (; j >= 0 && compare(list[j] as T, item) > 0; j--) list[j + 1] = list[j] as T;
    list[j + 1] = item;
  }
  return list;
}

function byApp(a: ResolveError, b: ResolveError): number {
  return compareStrings(a.app ?? '', b.app ?? '');
}

const descriptions = new WeakMap<Packet, string>();

function describe(packet: Packet): string {
  let description = descriptions.get(packet);
  if (description === undefined) {
    description = `${packet.name} ${formatLabels(packet.labels)}`;
    descriptions.set(packet, description);
  }
  return description;
}

/** The ids of the specs of requests in spec order (so sorted), each once. */
function specIds(list: readonly Request[]): string[] {
  const ids: string[] = [];
  for (const request of list) {
    const id = request.spec.spec.id;
    if (ids[ids.length - 1] !== id) ids.push(id);
  }
  return ids;
}

function dependsOn(packet: Packet): readonly string[] {
  return packet.requires.length === 0 ? none : [...new Set(packet.requires.map((r) => r.name))].sort();
}

/** Pinned labels of an app that the chosen packet does not have at all: it was a generic fallback. */
function fallbackWarning({ spec, app }: Request, packet: Packet): string | undefined {
  let missing: string[] | undefined;
  for (const key in app.app.labels)
    if (Object.hasOwn(app.app.labels, key) && !Object.hasOwn(packet.labels, key)) (missing ??= []).push(key);
  if (!missing) return undefined;
  return `spec ${spec.spec.id} pins ${missing.sort().join(', ')} for ${packet.name}, but the chosen packet ${describe(packet)} has no such label (generic fallback)`;
}

/** Requests of equal priority that agree (rule 3), joined once per packet they select (see `joinAgreeing`). */
export interface Joined {
  readonly desired: DesiredPacket;
  readonly warnings: readonly string[];
}

/** The common case, one spec asking for a packet, is built once per request and packet, and shared. */
export interface SharedDesired {
  desired: DesiredPacket;
  warning: string | undefined;
}

function sharedDesired(request: Request, packet: Packet): SharedDesired {
  let entry = request.shared.get(packet);
  if (!entry) {
    const desired = { packet, specs: [request.spec.spec.id], requiredBy: none, dependsOn: dependsOn(packet) };
    request.shared.set(packet, (entry = { desired, warning: fallbackWarning(request, packet) }));
  }
  return entry;
}

/** What one request alone makes on the devices whose labels give one pick key (see `outcomeOf`). */
export interface Outcome {
  readonly selection: Selection;
  /** When it fails: the error, naming the spec. */
  readonly error: ResolveError | undefined;
  /** FAILED, or WARNS and REQUIRES as they apply. */
  readonly flags: number;
  /** When it selects a packet: the desired packet the request alone makes, and its fallback warning. */
  readonly desired: DesiredPacket | undefined;
  readonly warning: string | undefined;
}

/** `outcomeOf` for a class, kept in its table. */
function outcomeIn(index: FleetIndex, deviceClass: DeviceClass, id: number): Outcome {
  return deviceClass.outcomes[id] ?? (deviceClass.outcomes[id] = outcomeOf(index, id, deviceClass.codes));
}

/**
 * Rule 4 for request `id` on a device whose labels are `codes`, memoised per request on its app's pick
 * key: classes that differ only in labels no packet of the name uses share the outcome.
 */
function outcomeOf(index: FleetIndex, id: number, codes: Int32Array): Outcome {
  const request = index.requests[id] as Request;
  const key = pickKeyOf(request.app, codes);
  const table = outcomesOf(index, request);
  let outcome = table[key];
  if (outcome === undefined) {
    const { selection } = pickAt(index, request.app, key, codes);
    if (!selection.ok) {
      const error = {
        code: selection.code,
        message: `${selection.message} (spec ${request.spec.spec.id})`,
        app: request.app.app.name,
      };
      outcome = { selection, error, flags: FAILED, desired: undefined, warning: undefined };
    } else {
      const { desired, warning } = sharedDesired(request, selection.packet);
      let flags = 0;
      if (selection.packet.requires.length > 0) flags |= REQUIRES;
      if (warning !== undefined) flags |= WARNS;
      outcome = { selection, error: undefined, flags, desired, warning };
    }
    if (table.length > 0) table[key] = outcome;
  }
  return outcome;
}

/** Into `index.scratch.list`: the requests of one name at one priority among the applying specs, in spec order. */
function requestsOf(
  index: FleetIndex,
  applying: Int32Array,
  from: number,
  to: number,
  nameId: number,
  priority: number,
): number {
  const { specFirst, requestNames, requestPriorities } = index;
  const list = index.scratch.list;
  let count = 0;
  for (let i = from; i < to; i++) {
    const order = applying[i] as number;
    for (let id = specFirst[order] as number; id < (specFirst[order + 1] as number); id++) {
      if (requestNames[id] === nameId && requestPriorities[id] === priority) list[count++] = id;
    }
  }
  return count;
}

/**
 * Rule 3 for the first `count` requests in `index.scratch.list` when they all select one packet on a
 * device of the class: the desired packet they make together and their warnings, shared by
 * the devices they select it for. Null when they fail or disagree: then `joinRequests` says why.
 */
function joinAgreeing(index: FleetIndex, deviceClass: DeviceClass, count: number): Joined | null {
  const list = index.scratch.list;
  let packet: Packet | undefined;
  // The ids in mixed radix while that is exact, else as text.
  const radix = index.requests.length + 1;
  let key: number | string = 0;
  for (let i = 0; i < count; i++) {
    const id = list[i] as number;
    const { selection } = outcomeIn(index, deviceClass, id);
    if (!selection.ok || (packet !== undefined && packet !== selection.packet)) return null;
    packet = selection.packet;
    if (typeof key === 'number' && key * radix + id + 1 <= Number.MAX_SAFE_INTEGER)
      key = key * radix + id + 1;
    else key = `${key},${id}`;
  }
  const known = index.joined.get(key);
  let joined: Joined | undefined;
  for (let i = 0; known !== undefined && i < known.length && !joined; i++)
    if ((known[i] as Joined).desired.packet === packet) joined = known[i];
  if (!joined && packet) {
    const requests = Array.from(list.subarray(0, count), (id) => index.requests[id] as Request);
    const warnings: string[] = [];
    for (const request of requests) {
      const warning = fallbackWarning(request, packet);
      if (warning) warnings.push(warning);
    }
    const desired = { packet, specs: specIds(requests), requiredBy: none, dependsOn: dependsOn(packet) };
    joined = { desired, warnings };
    if (known) known.push(joined);
    else index.joined.set(key, [joined]);
  }
  return joined ?? null;
}

/**
 * Why several requests at the top priority for one name do not make one packet (rule 3): into `errors`,
 * each request that fails, or their conflict.
 */
function joinRequests(
  index: FleetIndex,
  deviceClass: DeviceClass,
  list: readonly Request[],
  errors: ResolveError[],
): void {
  const pick = (request: Request) => outcomeIn(index, deviceClass, request.id).selection;
  let packet: Packet | undefined;
  for (const request of list) {
    const { selection, error } = outcomeIn(index, deviceClass, request.id);
    const name = request.app.app.name;
    if (!selection.ok) {
      errors.push(error as ResolveError);
    } else if (packet === undefined || packet === selection.packet) {
      packet = selection.packet;
      continue;
    } else {
      const askedBy = new Map<Packet, Set<string>>();
      for (const r of list) {
        const s = pick(r);
        if (s.ok) askedBy.set(s.packet, (askedBy.get(s.packet) ?? new Set()).add(r.spec.spec.id));
      }
      const options = [...askedBy].map(([p, specs]) => `${describe(p)} (spec ${[...specs].join(', ')})`);
      errors.push({
        code: 'conflicting_app',
        message: `specs of equal priority ask for different packets of ${name}: ${options.join(' vs ')}`,
        app: name,
      });
    }
    return;
  }
}

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
  const seen = new Set<string>();
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
    const state = [...next].map(([n, p]) => `${n}:${index.packetIds.get(p)}`).join(',');
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
  /** By name id: the names of the packets that require an explicit packet of that name. */
  readonly requiredBy: ReadonlyMap<number, readonly string[]>;
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
    requiredBy: new Map(),
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
  return { key, errors, added, addedNames, requiredBy, withBy: new Map() };
}

/**
 * The device's explicit packets (`desired` with names `chosen`, `n` of them, in name order) merged with
 * what the closure adds, with `requiredBy` filled in.
 */
function applyClosure(
  closure: Closure,
  desired: readonly DesiredPacket[],
  chosen: Int32Array,
  n: number,
): DesiredPacket[] {
  const { added, addedNames, requiredBy, withBy } = closure;
  const out = new Array<DesiredPacket>(n + added.length);
  let j = 0;
  let k = 0;
  for (let i = 0; i < n; i++) {
    const nameId = chosen[i] as number;
    while (j < added.length && (addedNames[j] as number) < nameId) out[k++] = added[j++] as DesiredPacket;
    let filled = desired[i] as DesiredPacket;
    const by = requiredBy.size === 0 ? undefined : requiredBy.get(nameId);
    if (by) {
      const known = withBy.get(filled);
      if (known) filled = known;
      else withBy.set(filled, (filled = { ...filled, requiredBy: by }));
    }
    out[k++] = filled;
  }
  while (j < added.length) out[k++] = added[j++] as DesiredPacket;
  return out;
}

/** What the closure can reach from a packet (see `Reach`); null past the cap. */
function reachOf(index: FleetIndex, packet: Packet): Reach | null {
  let reach = index.reach.get(packet);
  if (reach !== undefined) return reach;
  const seen = new Set<string>();
  const apps = new Set(index.requires.get(packet));
  const queue = packet.requires.map((r) => r.name);
  for (let i = 0; i < queue.length && seen.size <= MAX_REACH; i++) {
    const name = queue[i] as string;
    if (seen.has(name)) continue;
    seen.add(name);
    for (const p of index.packetsByName.get(name) ?? []) {
      for (const r of p.requires) queue.push(r.name);
      for (const app of index.requires.get(p) ?? []) apps.add(app);
    }
  }
  reach =
    seen.size > MAX_REACH
      ? null
      : { names: Int32Array.from(seen, (name) => index.nameIds.get(name) ?? -1).sort(), apps: [...apps] };
  index.reach.set(packet, reach);
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
  const { chosen, desired, key } = index.scratch;
  let length = 0;
  for (let i = 0; i < requiring; i++) {
    const { packet } = desired[index.scratch.requiring[i] as number] as DesiredPacket;
    const reach = reachOf(index, packet);
    if (reach === null || length + 1 + reach.names.length + reach.apps.length > key.length) return -1;
    key[length++] = index.packetIds.get(packet) ?? -1;
    for (const nameId of reach.names) {
      const at = positionOf(chosen, n, nameId);
      key[length++] = at < 0 ? -1 : (index.packetIds.get((desired[at] as DesiredPacket).packet) ?? -1);
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
function closureOf(index: FleetIndex, codes: Int32Array, n: number, required: number): Closure {
  const length = closureKey(index, codes, n, required);
  const hash = length < 0 ? 0 : hashWords(index.scratch.key, length);
  const known = length < 0 ? undefined : index.closures.get(hash);
  for (let i = 0; known !== undefined && i < known.length; i++)
    if (sameWords((known[i] as Closure).key, index.scratch.key, length)) return known[i] as Closure;
  const key = index.scratch.key.slice(0, Math.max(0, length));
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

/** FNV-1a over 32-bit words. */
function hashWords(words: Int32Array, length: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < length; i++) hash = Math.imul(hash ^ (words[i] as number), 0x01000193);
  return hash >>> 0;
}

function sameWords(a: Int32Array, b: Int32Array, length: number): boolean {
  if (a.length !== length) return false;
  for (let i = 0; i < length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Rules 1–6 for one device: applying specs, joined apps, best-match packets, requires closure. Fails
 * closed: if any app cannot be resolved, the result is every error found and no packets. Pure and
 * deterministic; `index` memoises across devices.
 */
export function resolveDesiredState(index: FleetIndex, device: Device): DesiredState {
  const deviceClass = classOf(index, device.labels);
  const count = matchSpecOrders(index, device);
  return resolveInClass(index, deviceClass, device, index.scratch.applying, 0, count);
}

/**
 * `resolveDesiredState` for a device of a known class (`classOf(index, device.labels)`) whose applying
 * specs are known (`matchSpecOrders`), as `applying[from]` to `applying[to - 1]`: rules 3–6.
 */
export function resolveInClass(
  index: FleetIndex,
  deviceClass: DeviceClass,
  device: Device,
  applying: Int32Array,
  from: number,
  to: number,
): DesiredState {
  const { codes } = deviceClass;
  const { requestNames, requestPriorities, specFirst } = index;
  const { top, count, joinKeys, asked, desired, chosen } = index.scratch;

  // Rule 3, first pass: per name, the first request of the highest priority, how many share it and
  // their ids in mixed radix (-1 past what a number holds exactly), which is what the class memoises
  // joins by. Most names are asked for once; the requests of the rare others are gathered again below.
  const radix = index.requests.length + 1;
  for (let i = from; i < to; i++) {
    const order = applying[i] as number;
    const end = specFirst[order + 1] as number;
    for (let id = specFirst[order] as number; id < end; id++) {
      const nameId = requestNames[id] as number;
      const current = top[nameId] as number;
      if (current < 0) {
        top[nameId] = id;
        count[nameId] = 1;
        joinKeys[nameId] = id + 1;
        asked[nameId >>> 5] = (asked[nameId >>> 5] as number) | (1 << (nameId & 31));
        continue;
      }
      const priority = requestPriorities[id] as number;
      const best = requestPriorities[current] as number;
      if (priority > best) {
        top[nameId] = id;
        count[nameId] = 1;
        joinKeys[nameId] = id + 1;
      } else if (priority === best) {
        count[nameId] = (count[nameId] as number) + 1;
        const key = (joinKeys[nameId] as number) * radix + id + 1;
        joinKeys[nameId] = key <= Number.MAX_SAFE_INTEGER ? key : -1;
      }
    }
  }

  // Second pass, in name order: the explicit choices (desired packets and their names' ids).
  let errors: ResolveError[] | undefined;
  const warnings = index.scratch.warnings;
  let warned = 0;
  let n = 0;
  // Positions in `desired` of the packets that require something.
  const requiring = index.scratch.requiring;
  let required = 0;
  for (let w = 0; w < asked.length; w++) {
    let bits = asked[w] as number;
    asked[w] = 0;
    while (bits !== 0) {
      const low = bits & -bits;
      bits ^= low;
      const nameId = (w << 5) + 31 - Math.clz32(low);
      const id = top[nameId] as number;
      top[nameId] = -1;
      if (count[nameId] === 1) {
        const outcome = outcomeIn(index, deviceClass, id);
        const flags = outcome.flags;
        if ((flags & FAILED) !== 0) {
          (errors ??= []).push(outcome.error as ResolveError);
          continue;
        }
        if (errors) continue;
        desired[n] = outcome.desired as DesiredPacket;
        if ((flags & WARNS) !== 0) warnings[warned++] = outcome.warning as string;
        if ((flags & REQUIRES) !== 0) requiring[required++] = n;
      } else {
        const priority = requestPriorities[id] as number;
        const key = joinKeys[nameId] as number;
        let joined = key < 0 ? undefined : deviceClass.joins.get(key);
        if (joined === undefined) {
          joined = joinAgreeing(index, deviceClass, requestsOf(index, applying, from, to, nameId, priority));
          if (key >= 0) deviceClass.joins.set(key, joined);
        }
        if (!joined) {
          const asking = requestsOf(index, applying, from, to, nameId, priority);
          const list = Array.from(
            index.scratch.list.subarray(0, asking),
            (r) => index.requests[r] as Request,
          );
          joinRequests(index, deviceClass, list, (errors ??= []));
          continue;
        }
        if (errors) continue;
        desired[n] = joined.desired;
        for (const warning of joined.warnings) warnings[warned++] = warning;
        if (joined.desired.packet.requires.length > 0) requiring[required++] = n;
      }
      chosen[n++] = nameId;
    }
  }
  if (errors) return { ok: false, device, errors: sortSmall(errors, byApp) };
  const sorted = warned === 0 ? none : sortSmall(warnings.slice(0, warned), compareStrings);
  if (required === 0) return { ok: true, device, packets: desired.slice(0, n), warnings: sorted };
  const closure = closureOf(index, codes, n, required);
  if (closure.errors.length > 0) return { ok: false, device, errors: closure.errors };
  return { ok: true, device, packets: applyClosure(closure, desired, chosen, n), warnings: sorted };
}
