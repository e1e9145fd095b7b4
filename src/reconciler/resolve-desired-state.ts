import { compareStrings } from '../schema/compare-strings.js';
import type { Device, Packet } from '../schema/fleet.js';
import type { ErrorCode } from '../schema/gitfleet-error.js';
import { dependsOn, describe, none, type DesiredPacket } from './desired-packet.js';
import {
  classOf,
  matchSpecOrders,
  outcomesOf,
  pickAt,
  pickKeyOf,
  type DeviceClass,
  type FleetIndex,
  type Request,
} from './index-fleet.js';
import { applyClosure, closureOf } from './requires-closure.js';
import type { Selection } from './select-packet.js';

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

/** The ids of the specs of requests in spec order (so sorted), each once. */
function specIds(list: readonly Request[]): string[] {
  const ids: string[] = [];
  for (const request of list) {
    const id = request.spec.spec.id;
    if (ids[ids.length - 1] !== id) ids.push(id);
  }
  return ids;
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
  /** Its packet's position in `fleet.packets`. */
  readonly position: number;
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
  /** When it selects a packet: the desired packet the request alone makes, and its fallback warning. */
  readonly desired: DesiredPacket | undefined;
  readonly warning: string | undefined;
  /** Whether the selected packet requires something (rule 5 then has work). */
  readonly requires: boolean;
  /** The selected packet's position in `fleet.packets` (-1: none is). */
  readonly position: number;
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
    const { selection, position } = pickAt(index, request.app, key, codes);
    if (!selection.ok) {
      const error = {
        code: selection.code,
        message: `${selection.message} (spec ${request.spec.spec.id})`,
        app: request.app.app.name,
      };
      outcome = { selection, error, desired: undefined, warning: undefined, requires: false, position };
    } else {
      const { desired, warning } = sharedDesired(request, selection.packet);
      const requires = selection.packet.requires.length > 0;
      outcome = { selection, error: undefined, desired, warning, requires, position };
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
 * `joinKey` is their ids in mixed radix as the first pass of `resolveInClass` makes it (-1: not exact).
 */
function joinAgreeing(
  index: FleetIndex,
  deviceClass: DeviceClass,
  count: number,
  joinKey: number,
): Joined | null {
  const list = index.scratch.list;
  let packet: Packet | undefined;
  let position = -1;
  for (let i = 0; i < count; i++) {
    const outcome = outcomeIn(index, deviceClass, list[i] as number);
    const { selection } = outcome;
    if (!selection.ok || (packet !== undefined && packet !== selection.packet)) return null;
    packet = selection.packet;
    position = outcome.position;
  }
  const key = joinKey >= 0 ? joinKey : list.subarray(0, count).join(',');
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
    joined = { desired, position, warnings };
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
  const { top, count, joinKeys, asked, desired, positions, chosen } = index.scratch;

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
        if (outcome.error) {
          (errors ??= []).push(outcome.error);
          continue;
        }
        if (errors) continue;
        desired[n] = outcome.desired as DesiredPacket;
        positions[n] = outcome.position;
        if (outcome.warning !== undefined) warnings[warned++] = outcome.warning;
        if (outcome.requires) requiring[required++] = n;
      } else {
        const priority = requestPriorities[id] as number;
        const key = joinKeys[nameId] as number;
        let joined = key < 0 ? undefined : deviceClass.joins.get(key);
        if (joined === undefined) {
          const asking = requestsOf(index, applying, from, to, nameId, priority);
          joined = joinAgreeing(index, deviceClass, asking, key);
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
        positions[n] = joined.position;
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
