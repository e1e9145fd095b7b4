import type { InstalledPacket, Packet } from '../schema/fleet.js';
import { formatLabels, labelsKey } from '../schema/labels.js';
import type { DesiredPacket } from './desired-packet.js';
import type { ResolveError } from './resolve-desired-state.js';

/** One step of a plan. The agent interprets it; `--dry-run` prints it. */
export type Action =
  | { type: 'install'; name: string; to: Packet; reason: string; specs: readonly string[] }
  | {
      type: 'upgrade';
      name: string;
      from: InstalledPacket;
      to: Packet;
      reason: string;
      specs: readonly string[];
    }
  | { type: 'uninstall'; name: string; from: InstalledPacket; reason: string; specs: readonly string[] };

export type PlanResult = { ok: true; actions: Action[] } | { ok: false; error: ResolveError };

/**
 * Names ordered so that every name comes after the names it depends on (ties by name). Edges to names
 * outside the set are ignored; names caught in a cycle keep name order at the end.
 */
export function orderByDependencies(
  names: readonly string[],
  dependsOn: (name: string) => readonly string[],
): string[] {
  const set = new Set(names);
  const pending = new Map<string, number>();
  const dependents = new Map<string, string[]>();
  for (const name of set) {
    const deps = [...new Set(dependsOn(name))].filter((d) => set.has(d) && d !== name);
    pending.set(name, deps.length);
    for (const dep of deps) dependents.set(dep, [...(dependents.get(dep) ?? []), name]);
  }
  const ready = [...set].filter((n) => pending.get(n) === 0).sort();
  const order: string[] = [];
  while (ready.length > 0) {
    const name = ready.shift() as string;
    order.push(name);
    for (const dependent of dependents.get(name) ?? []) {
      const left = (pending.get(dependent) ?? 0) - 1;
      pending.set(dependent, left);
      if (left === 0) {
        ready.push(dependent);
        ready.sort();
      }
    }
  }
  return [...order, ...[...set].filter((n) => !order.includes(n)).sort()];
}

function why(desired: DesiredPacket): string {
  if (desired.specs.length > 0) return `spec ${desired.specs.join(', ')} asks for ${desired.packet.name}`;
  return `required by ${desired.requiredBy.join(', ')}`;
}

/**
 * Desired × installed → ordered actions: uninstalls first (dependents before their dependencies), then
 * installs and upgrades (dependencies first). A packet whose name and labels match but whose artifact
 * sha256 differs is upgraded. Refuses with `empty_set_refused` a plan that would uninstall every installed
 * packet and install nothing (an empty desired set on a device that has packets), unless `allowEmpty`. `planActions(d, installedOf(d))` is empty.
 */
export function planActions(
  desired: readonly DesiredPacket[],
  installed: readonly InstalledPacket[],
  options: { allowEmpty: boolean },
): PlanResult {
  const want = new Map(desired.map((d) => [d.packet.name, d]));
  const have = new Map(installed.map((i) => [i.name, i]));

  const removed = [...have.keys()].filter((name) => !want.has(name));
  if (!options.allowEmpty && have.size > 0 && want.size === 0) {
    return {
      ok: false,
      error: {
        code: 'empty_set_refused',
        message: `the plan would uninstall every installed packet (${removed.sort().join(', ')}); set allowEmpty on the device record or in fleet.yaml guards to allow it`,
      },
    };
  }
  const uninstalls = orderByDependencies(removed, (name) => have.get(name)?.requires ?? [])
    .reverse()
    .map((name): Action => ({
      type: 'uninstall',
      name,
      from: have.get(name) as InstalledPacket,
      reason: `no applying spec asks for ${name} and no desired packet requires it`,
      specs: [],
    }));

  const changes: Action[] = [];
  for (const name of orderByDependencies([...want.keys()], (n) => want.get(n)?.dependsOn ?? [])) {
    const target = want.get(name) as DesiredPacket;
    const current = have.get(name);
    const to = target.packet;
    if (!current) {
      changes.push({ type: 'install', name, to, reason: why(target), specs: target.specs });
      continue;
    }
    const sameLabels = labelsKey(current.labels) === labelsKey(to.labels);
    const sameBytes = current.sha256 === undefined || current.sha256 === to.artifact.sha256;
    if (sameLabels && sameBytes) continue;
    const change = sameLabels
      ? `artifact changed (sha256 ${current.sha256?.slice(0, 12)} → ${to.artifact.sha256.slice(0, 12)})`
      : `${formatLabels(current.labels)} → ${formatLabels(to.labels)}`;
    changes.push({
      type: 'upgrade',
      name,
      from: current,
      to,
      reason: `${why(target)}: ${change}`,
      specs: target.specs,
    });
  }
  return { ok: true, actions: [...uninstalls, ...changes] };
}
