import { compareStrings } from '../schema/compare-strings.js';
import type { Device, Packet } from '../schema/fleet.js';
import type { ErrorCode } from '../schema/gitfleet-error.js';
import { formatLabels } from '../schema/labels.js';
import {
  matchSpecs,
  encodeDevice,
  pickFor,
  type CompiledApp,
  type CompiledSpec,
  type FleetIndex,
  type Request,
} from './index-fleet.js';
import { compareRank, pickTop } from './select-packet.js';

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

export interface ResolveError {
  code: ErrorCode;
  message: string;
  app?: string;
}

/** A device's desired state (sorted by name), or every reason it has none (fail closed, rule 6). */
export type DesiredState =
  | { ok: true; device: Device; packets: readonly DesiredPacket[]; warnings: readonly string[] }
  | { ok: false; device: Device; errors: ResolveError[] };

/** Rounds of the requires closure before it fails loudly. */
const MAX_REQUIRE_ROUNDS = 256;

const none: readonly string[] = Object.freeze([]);

interface Choice {
  nameId: number;
  packet: Packet;
  requests: readonly Request[];
}

function byApp(a: ResolveError, b: ResolveError): number {
  return compareStrings(a.app ?? '', b.app ?? '');
}

function describe(packet: Packet): string {
  return `${packet.name} ${formatLabels(packet.labels)}`;
}

function dependsOn(packet: Packet): readonly string[] {
  return packet.requires.length === 0 ? none : [...new Set(packet.requires.map((r) => r.name))].sort();
}

/** Pinned labels of an app that the chosen packet does not have at all: it was a generic fallback. */
function fallbackWarning({ spec, app }: Request, packet: Packet): string | undefined {
  const missing = Object.keys(app.app.labels).filter((k) => !Object.hasOwn(packet.labels, k));
  if (missing.length === 0) return undefined;
  return `spec ${spec.spec.id} pins ${missing.sort().join(', ')} for ${packet.name}, but the chosen packet ${describe(packet)} has no such label (generic fallback)`;
}

/** The common case, one spec asking for a packet nothing requires, is built once per request and shared. */
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

/** Rule 3: join the apps of all applying specs; the highest priority wins, equal ones must agree. */
function joinApps(
  index: FleetIndex,
  specs: readonly CompiledSpec[],
  device: Device,
  codes: Int32Array,
  errors: ResolveError[],
): Choice[] {
  // Most names are asked for once: keep a lone request as is, and make a list only for a second one.
  // The slots live in the index (one per name) and are cleared before returning.
  const slots = index.scratch;
  const touched: number[] = [];
  for (const spec of specs) {
    for (const request of spec.requests) {
      const id = request.app.nameId;
      const current = slots[id];
      if (current === undefined) {
        slots[id] = request;
        touched.push(id);
        continue;
      }
      const top = (Array.isArray(current) ? (current[0] as Request) : current).spec.spec.priority;
      const priority = spec.spec.priority;
      if (priority > top) slots[id] = request;
      else if (priority === top) {
        if (Array.isArray(current)) current.push(request);
        else slots[id] = [current, request];
      }
    }
  }
  const pick = (request: Request) => pickFor(index, request.app, codes, device.labels).selection;
  const chosen: Choice[] = [];
  for (const nameId of Int32Array.from(touched).sort()) {
    const top = slots[nameId] as Request | Request[];
    slots[nameId] = undefined;
    const list = Array.isArray(top) ? top : top.alone;
    let packet: Packet | undefined;
    for (const request of list) {
      const selection = pick(request);
      const name = request.app.app.name;
      if (!selection.ok) {
        errors.push({
          code: selection.code,
          message: `${selection.message} (spec ${request.spec.spec.id})`,
          app: name,
        });
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
      packet = undefined;
      break;
    }
    // Requests that agree collapse into one choice (rule 3).
    if (packet) chosen.push({ nameId, packet, requests: list });
  }
  return chosen;
}

/**
 * Rule 5: add what chosen packets require, transitively. A name several packets require gets the best
 * packet that satisfies all of them; a packet an app chose must satisfy every requirement on it. Errors
 * count once the choices settle; choices that keep changing fail loudly.
 */
function closeRequires(
  index: FleetIndex,
  explicit: Map<number, Choice>,
  device: Device,
  codes: Int32Array,
  errors: ResolveError[],
): Map<number, Packet> {
  const candidates = (app: CompiledApp) => pickFor(index, app, codes, device.labels).ranked;
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
    for (const choice of explicit.values()) want(choice.packet);
    for (const packet of derived.values()) want(packet);
    const next = new Map<number, Packet>();
    const roundErrors: ResolveError[] = [];
    for (const [nameId, reqs] of [...wanted].sort((a, b) => a[0] - b[0])) {
      const name = index.names[nameId] ?? '';
      const pinned = explicit.get(nameId)?.packet;
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
      const what = `required by ${[...new Set(reqs.map((r) => r.by.name))].sort().join(', ')}`;
      const byVersion = reqs.some((r) => r.app.app.version !== undefined);
      const each = reqs.map(({ app }) => candidates(app));
      const ranked = each
        .reduce<Packet[]>((acc, list) => acc.filter((p) => list.includes(p)), [...(each[0] ?? [])])
        .sort((a, b) => compareRank(a, b, byVersion));
      const selection = pickTop(ranked, head.app.app, byVersion);
      if (selection.ok) next.set(nameId, selection.packet);
      else if (
        selection.code === 'no_matching_packet' &&
        each.length > 1 &&
        each.every((l) => l.length > 0)
      ) {
        roundErrors.push({
          code: 'conflicting_app',
          message: `no packet of ${name} satisfies every requirement (${what})`,
          app: name,
        });
      } else roundErrors.push({ code: selection.code, message: `${selection.message} (${what})`, app: name });
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

/** A dependency cycle among the chosen packets, as a path `a → b → a`, or undefined. */
function findCycle(chosen: Map<string, Packet>): string[] | undefined {
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (name: string): string[] | undefined => {
    if (state.get(name) === 'done') return undefined;
    if (state.get(name) === 'open') return [...path.slice(path.indexOf(name)), name];
    state.set(name, 'open');
    path.push(name);
    for (const dep of dependsOn(chosen.get(name) as Packet)) {
      if (!chosen.has(dep)) continue;
      const cycle = visit(dep);
      if (cycle) return cycle;
    }
    path.pop();
    state.set(name, 'done');
    return undefined;
  };
  // Only a packet that requires something can be on a cycle.
  for (const name of [...chosen]
    .filter(([, p]) => p.requires.length > 0)
    .map(([n]) => n)
    .sort()) {
    const cycle = visit(name);
    if (cycle) return cycle;
  }
  return undefined;
}

/**
 * Adds what the chosen packets require to `packets` (the explicit ones, in name order), and fills in
 * `requiredBy`. The slower, rarer path: most packets require nothing.
 */
function withRequires(
  index: FleetIndex,
  explicit: Map<number, Choice>,
  packets: readonly DesiredPacket[],
  device: Device,
  codes: Int32Array,
  errors: ResolveError[],
): DesiredPacket[] {
  const derived = closeRequires(index, explicit, device, codes, errors);
  if (errors.length > 0) return [];
  const chosen = new Map<string, Packet>();
  for (const { packet } of explicit.values()) chosen.set(packet.name, packet);
  for (const packet of derived.values()) chosen.set(packet.name, packet);
  const cycle = findCycle(chosen);
  if (cycle) {
    errors.push({
      code: 'dependency_cycle',
      message: `requires form a cycle: ${cycle.join(' → ')}`,
      app: cycle[0],
    });
    return [];
  }
  const requiredBy = new Map<string, string[]>();
  for (const [name, packet] of [...chosen]
    .filter(([, p]) => p.requires.length > 0)
    .sort((a, b) => compareStrings(a[0], b[0]))) {
    for (const dep of dependsOn(packet)) requiredBy.set(dep, [...(requiredBy.get(dep) ?? []), name]);
  }
  const added = [...derived.values()].map((packet) => ({
    packet,
    specs: none,
    requiredBy: none,
    dependsOn: dependsOn(packet),
  }));
  return [...packets, ...added]
    .sort((a, b) => compareStrings(a.packet.name, b.packet.name))
    .map((d) => {
      const by = requiredBy.get(d.packet.name);
      return by ? { ...d, requiredBy: by } : d;
    });
}

/**
 * Rules 1–6 for one device: applying specs, joined apps, best-match packets, requires closure. Fails
 * closed: if any app cannot be resolved, the result is every error found and no packets. Pure and
 * deterministic; `index` memoises across devices.
 */
export function resolveDesiredState(index: FleetIndex, device: Device): DesiredState {
  const errors: ResolveError[] = [];
  const codes = encodeDevice(index, device.labels);
  const specs = matchSpecs(index, device);
  const choices = joinApps(index, specs, device, codes, errors);
  if (errors.length > 0) return { ok: false, device, errors: errors.sort(byApp) };

  let warnings: string[] | undefined;
  let requires = false;
  const packets: DesiredPacket[] = [];
  for (const { packet, requests } of choices) {
    requires ||= packet.requires.length > 0;
    const [only] = requests;
    if (only && requests.length === 1) {
      const { desired, warning } = sharedDesired(only, packet);
      packets.push(desired);
      if (warning) (warnings ??= []).push(warning);
      continue;
    }
    packets.push({
      packet,
      specs: [...new Set(requests.map((r) => r.spec.spec.id))].sort(),
      requiredBy: none,
      dependsOn: dependsOn(packet),
    });
    for (const request of requests) {
      const warning = fallbackWarning(request, packet);
      if (warning) (warnings ??= []).push(warning);
    }
  }
  if (requires) {
    const explicit = new Map(choices.map((c) => [c.nameId, c]));
    const closed = withRequires(index, explicit, packets, device, codes, errors);
    if (errors.length > 0) return { ok: false, device, errors };
    return { ok: true, device, packets: closed, warnings: warnings?.sort() ?? none };
  }
  return { ok: true, device, packets, warnings: warnings?.sort() ?? none };
}
