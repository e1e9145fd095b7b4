import type { App, Device, Packet, Spec } from '../schema/fleet.js';
import type { ErrorCode } from '../schema/gitfleet-error.js';
import { formatLabels, labelsKey } from '../schema/labels.js';
import { applyingSpecs, candidatesFor, type FleetIndex } from './index-fleet.js';
import { compareRank, pickTop, type Selection } from './select-packet.js';

/** One packet of a device's desired state, with why it is there. */
export interface DesiredPacket {
  packet: Packet;
  /** Ids of the specs that ask for it (sorted). */
  specs: string[];
  /** Names of desired packets that require it (sorted). */
  requiredBy: string[];
  /** Names of the packets it requires (sorted). */
  dependsOn: string[];
}

export interface ResolveError {
  code: ErrorCode;
  message: string;
  app?: string;
}

/** A device's desired state (sorted by name), or every reason it has none (fail closed, rule 6). */
export type DesiredState =
  | { ok: true; device: Device; packets: DesiredPacket[]; warnings: string[] }
  | { ok: false; device: Device; errors: ResolveError[] };

/** Rounds of the requires closure before it fails loudly; each round adds at least one packet. */
export const MAX_REQUIRE_ROUNDS = 256;

interface Choice {
  packet: Packet;
  specs: string[];
}

function identity(packet: Packet): string {
  return `${packet.name}\u0000${labelsKey(packet.labels)}`;
}

function describe(packet: Packet): string {
  return `${packet.name} ${formatLabels(packet.labels)}`;
}

function select(index: FleetIndex, app: App, device: Device, what: string): Selection {
  return pickTop(candidatesFor(index, app, device.labels), app, app.version !== undefined, what);
}

/** Rule 3: join the apps of all applying specs; the highest priority wins, equal ones must agree. */
function joinApps(
  index: FleetIndex,
  specs: Spec[],
  device: Device,
  errors: ResolveError[],
): Map<string, Choice> {
  const requests = new Map<string, { spec: Spec; app: App }[]>();
  for (const spec of specs) {
    for (const app of spec.apps) {
      const list = requests.get(app.name);
      if (!list) requests.set(app.name, [{ spec, app }]);
      else if (spec.priority > (list[0]?.spec.priority ?? 0)) requests.set(app.name, [{ spec, app }]);
      else if (spec.priority === list[0]?.spec.priority) list.push({ spec, app });
    }
  }
  const chosen = new Map<string, Choice>();
  for (const name of [...requests.keys()].sort()) {
    const top = requests.get(name) ?? [];
    const picks = new Map<string, Choice>();
    let failed = false;
    for (const { spec, app } of top) {
      const selection = select(index, app, device, `spec ${spec.id}`);
      if (!selection.ok) {
        errors.push({ code: selection.code, message: selection.message, app: name });
        failed = true;
        break;
      }
      const id = identity(selection.packet);
      const pick = picks.get(id);
      if (pick) pick.specs.push(spec.id);
      else picks.set(id, { packet: selection.packet, specs: [spec.id] });
    }
    if (failed) continue;
    if (picks.size > 1) {
      const options = [...picks.values()].map(
        (c) => `${describe(c.packet)} (spec ${[...new Set(c.specs)].join(', ')})`,
      );
      errors.push({
        code: 'conflicting_app',
        message: `specs of equal priority ask for different packets of ${name}: ${options.join(' vs ')}`,
        app: name,
      });
      continue;
    }
    const [only] = picks.values();
    if (only) chosen.set(name, { packet: only.packet, specs: [...new Set(only.specs)].sort() });
  }
  return chosen;
}

/**
 * Rule 5: add what chosen packets require, transitively. A name several packets require gets the best
 * packet that satisfies all of them; a packet an app chose must satisfy every requirement on it.
 */
function closeRequires(
  index: FleetIndex,
  explicit: Map<string, Choice>,
  device: Device,
  errors: ResolveError[],
) {
  let derived = new Map<string, Packet>();
  for (let round = 0; ; round++) {
    if (round >= MAX_REQUIRE_ROUNDS) {
      errors.push({
        code: 'dependency_cycle',
        message: `requires did not settle after ${MAX_REQUIRE_ROUNDS} rounds`,
      });
      return derived;
    }
    const wanted = new Map<string, { app: App; by: Packet }[]>();
    for (const packet of [...explicit.values()].map((c) => c.packet).concat([...derived.values()])) {
      for (const app of packet.requires) {
        const list = wanted.get(app.name);
        if (list) list.push({ app, by: packet });
        else wanted.set(app.name, [{ app, by: packet }]);
      }
    }
    const next = new Map<string, Packet>();
    const roundErrors: ResolveError[] = [];
    for (const name of [...wanted.keys()].sort()) {
      const reqs = wanted.get(name) ?? [];
      const pinned = explicit.get(name)?.packet;
      if (pinned) {
        const refused = reqs.find(({ app }) => !candidatesFor(index, app, device.labels).includes(pinned));
        if (refused) {
          roundErrors.push({
            code: 'conflicting_app',
            message: `${describe(refused.by)} requires ${name}${refused.app.version ? ` ${refused.app.version}` : ''}, but a spec selects ${describe(pinned)}`,
            app: name,
          });
        }
        continue;
      }
      const [head] = reqs;
      if (!head) continue;
      const what = `required by ${[...new Set(reqs.map((r) => r.by.name))].sort().join(', ')}`;
      const byVersion = reqs.some((r) => r.app.version !== undefined);
      const each = reqs.map(({ app }) => candidatesFor(index, app, device.labels));
      const ranked = each
        .reduce<Packet[]>((acc, list) => acc.filter((p) => list.includes(p)), [...(each[0] ?? [])])
        .sort((a, b) => compareRank(a, b, byVersion));
      const selection = pickTop(ranked, head.app, byVersion, what);
      if (selection.ok) next.set(name, selection.packet);
      else if (
        selection.code === 'no_matching_packet' &&
        each.length > 1 &&
        each.every((list) => list.length > 0)
      ) {
        roundErrors.push({
          code: 'conflicting_app',
          message: `no packet of ${name} satisfies every requirement (${what})`,
          app: name,
        });
      } else roundErrors.push({ code: selection.code, message: selection.message, app: name });
    }
    const settled = next.size === derived.size && [...next].every(([n, p]) => derived.get(n) === p);
    derived = next;
    // Errors count only once the choices settle: a packet replaced in this round may have caused them.
    if (settled) {
      errors.push(...roundErrors);
      return derived;
    }
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
    for (const dep of [...new Set(chosen.get(name)?.requires.map((r) => r.name) ?? [])].sort()) {
      if (!chosen.has(dep)) continue;
      const cycle = visit(dep);
      if (cycle) return cycle;
    }
    path.pop();
    state.set(name, 'done');
    return undefined;
  };
  for (const name of [...chosen.keys()].sort()) {
    const cycle = visit(name);
    if (cycle) return cycle;
  }
  return undefined;
}

/** Pinned labels of an app that the chosen packet does not have at all: it was a generic fallback. */
function fallbackWarnings(specs: Spec[], chosen: Map<string, Choice>): string[] {
  const warnings: string[] = [];
  for (const spec of specs) {
    for (const app of spec.apps) {
      const packet = chosen.get(app.name)?.packet;
      if (!packet || !chosen.get(app.name)?.specs.includes(spec.id)) continue;
      const missing = Object.keys(app.labels).filter((k) => !Object.hasOwn(packet.labels, k));
      if (missing.length > 0) {
        warnings.push(
          `spec ${spec.id} pins ${missing.sort().join(', ')} for ${app.name}, but the chosen packet ${describe(packet)} has no such label (generic fallback)`,
        );
      }
    }
  }
  return warnings;
}

/**
 * Rules 1–6 for one device: applying specs, joined apps, best-match packets, requires closure. Fails
 * closed: if any app cannot be resolved, the result is every error found and no packets. Pure and
 * deterministic; `index` memoises across devices.
 */
export function resolveDesiredState(index: FleetIndex, device: Device): DesiredState {
  const errors: ResolveError[] = [];
  const specs = applyingSpecs(index, device);
  const explicit = joinApps(index, specs, device, errors);
  const derived =
    errors.length === 0 ? closeRequires(index, explicit, device, errors) : new Map<string, Packet>();
  const chosen = new Map<string, Packet>([
    ...[...explicit].map(([n, c]) => [n, c.packet] as const),
    ...derived,
  ]);
  if (errors.length === 0) {
    const cycle = findCycle(chosen);
    if (cycle)
      errors.push({
        code: 'dependency_cycle',
        message: `requires form a cycle: ${cycle.join(' → ')}`,
        app: cycle[0],
      });
  }
  if (errors.length > 0) return { ok: false, device, errors };

  const requiredBy = new Map<string, Set<string>>();
  for (const [name, packet] of chosen) {
    for (const r of packet.requires) {
      const set = requiredBy.get(r.name);
      if (set) set.add(name);
      else requiredBy.set(r.name, new Set([name]));
    }
  }
  const packets = [...chosen.keys()].sort().map((name): DesiredPacket => {
    const packet = chosen.get(name) as Packet;
    return {
      packet,
      specs: explicit.get(name)?.specs ?? [],
      requiredBy: [...(requiredBy.get(name) ?? [])].sort(),
      dependsOn: [...new Set(packet.requires.map((r) => r.name))].sort(),
    };
  });
  return { ok: true, device, packets, warnings: fallbackWarnings(specs, explicit) };
}
