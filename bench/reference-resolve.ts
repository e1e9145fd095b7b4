import { minimatch } from 'minimatch';
import semver from 'semver';
import { inRollout } from '../src/reconciler/rollout-bucket.js';
import type { DesiredState } from '../src/reconciler/resolve-desired-state.js';
import type { App, Device, Fleet, Packet, Spec } from '../src/schema/fleet.js';
import { labelsKey } from '../src/schema/labels.js';

/**
 * A plain, obviously-correct implementation of DESIGN.md §2 rules 1–6, used as an oracle for the engine.
 * For every device it scans every spec and, for every app, every packet of the fleet: no index, no
 * cache, no shared state between calls. Slow on purpose; only its answers matter.
 */

/** A comparable outcome: the desired packets (name + canonical labels, sorted), or the error codes. */
export type CanonicalState = { ok: true; packets: string[] } | { ok: false; codes: string[] };

/** Bounded closure of rule 5, as in the engine. */
const MAX_ROUNDS = 256;

type Pick = { ok: true; packet: Packet } | { ok: false; code: 'no_matching_packet' | 'ambiguous_match' };

function packetId(packet: Packet): string {
  return packet.name + labelsKey(packet.labels);
}

/** Rule 1, one target value: exact string, or a minimatch pattern when it has glob characters or a leading `!`. */
function valueMatches(pattern: string, value: string): boolean {
  const isGlob = /[*?[\]{}]/.test(pattern) || pattern.startsWith('!');
  if (!isGlob) return value === pattern;
  return minimatch(value, pattern, { dot: true, nocomment: true });
}

/** Rules 1 and 2: every target key present on the device with a matching value, and inside the rollout. */
function specApplies(spec: Spec, device: Device): boolean {
  for (const [key, pattern] of Object.entries(spec.target)) {
    if (!Object.hasOwn(device.labels, key)) return false;
    if (!valueMatches(pattern, device.labels[key] as string)) return false;
  }
  if (spec.rollout === undefined) return true;
  return inRollout(spec.id, device.id, spec.rollout.percent);
}

/** Rule 4: M = device labels overlaid by the app's pinned labels (the app wins on a shared key). */
function mergedLabels(device: Device, app: App): Map<string, string> {
  const merged = new Map<string, string>(Object.entries(device.labels));
  for (const [key, value] of Object.entries(app.labels)) merged.set(key, value);
  return merged;
}

/**
 * Rule 4, candidates: same name; without a range the whole labelset is a subset of M; with a range the
 * `version` label is valid semver satisfying it and every other label is a subset of M.
 */
function isCandidate(packet: Packet, app: App, device: Device): boolean {
  if (packet.name !== app.name) return false;
  const merged = mergedLabels(device, app);
  for (const [key, value] of Object.entries(packet.labels)) {
    if (app.version !== undefined && key === 'version') continue;
    if (!merged.has(key) || merged.get(key) !== value) return false;
  }
  if (app.version === undefined) return true;
  const version = packet.labels.version;
  if (version === undefined || semver.valid(version) === null) return false;
  return semver.satisfies(version, app.version);
}

/** Positive when `a` ranks above `b`: the highest version (when ranking by version), then the most labels. */
function rankAbove(a: Packet, b: Packet, byVersion: boolean): number {
  if (byVersion) {
    const byVer = semver.compare(a.labels.version as string, b.labels.version as string);
    if (byVer !== 0) return byVer;
  }
  return Object.keys(a.labels).length - Object.keys(b.labels).length;
}

/** The single best candidate; none is `no_matching_packet`, several equally good ones `ambiguous_match`. */
function best(candidates: Packet[], byVersion: boolean): Pick {
  if (candidates.length === 0) return { ok: false, code: 'no_matching_packet' };
  let top = candidates[0] as Packet;
  for (const c of candidates) if (rankAbove(c, top, byVersion) > 0) top = c;
  const tied = candidates.filter((c) => rankAbove(c, top, byVersion) === 0);
  if (tied.length > 1) return { ok: false, code: 'ambiguous_match' };
  return { ok: true, packet: top };
}

/** Rule 4 for one app: scan every packet of the fleet. */
function selectFor(fleet: Fleet, app: App, device: Device): Pick {
  const candidates = fleet.packets.filter((p) => isCandidate(p, app, device));
  return best(candidates, app.version !== undefined);
}

function fail(codes: string[]): CanonicalState {
  return { ok: false, codes: [...codes].sort() };
}

/** True when the requires among the chosen packets form a cycle (edges only to chosen names). */
function hasCycle(chosen: Map<string, Packet>): boolean {
  // Peel off names that require no remaining name; whatever cannot be peeled is on or behind a cycle.
  const left = new Set(chosen.keys());
  let removed = true;
  while (removed) {
    removed = false;
    for (const name of [...left]) {
      const deps = (chosen.get(name) as Packet).requires.map((r) => r.name);
      if (!deps.some((d) => left.has(d))) {
        left.delete(name);
        removed = true;
      }
    }
  }
  return left.size > 0;
}

/**
 * Rules 1–6 for one device, from scratch. Rule 3 reports at most one error per app name: the first
 * failing request (specs by id, apps in spec order) or `conflicting_app`. Rule 5 is the engine's fixed
 * point: each round, every name required by a chosen packet gets the best packet satisfying all the
 * requirements on it (an app-chosen packet must satisfy every requirement on it instead), until the set
 * of required packets no longer changes; only the errors of that last round count. Choices that do not
 * settle within the bound are `dependency_cycle`, as is a cycle among the finally chosen packets.
 */
export function referenceResolve(fleet: Fleet, device: Device): CanonicalState {
  // Rules 1 and 2.
  const specs = fleet.specs
    .filter((spec) => specApplies(spec, device))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const requests = specs.flatMap((spec) => spec.apps.map((app) => ({ spec, app })));

  // Rule 3 (with rule 4 for each request).
  const errors: string[] = [];
  const explicit = new Map<string, Packet>();
  const names = [...new Set(requests.map((r) => r.app.name))].sort();
  for (const name of names) {
    const asking = requests.filter((r) => r.app.name === name);
    const top = Math.max(...asking.map((r) => r.spec.priority));
    const winners = asking.filter((r) => r.spec.priority === top);
    const picked: Packet[] = [];
    let failed = false;
    for (const { app } of winners) {
      const pick = selectFor(fleet, app, device);
      if (!pick.ok) {
        errors.push(pick.code);
        failed = true;
        break;
      }
      picked.push(pick.packet);
    }
    if (failed) continue;
    if (new Set(picked.map(packetId)).size > 1) errors.push('conflicting_app');
    else explicit.set(name, picked[0] as Packet);
  }
  if (errors.length > 0) return fail(errors);

  // Rule 5.
  let derived = new Map<string, Packet>();
  for (let round = 0; ; round++) {
    if (round >= MAX_ROUNDS) return fail(['dependency_cycle']);
    const wanted = new Map<string, App[]>();
    for (const packet of [...explicit.values(), ...derived.values()]) {
      for (const req of packet.requires) wanted.set(req.name, [...(wanted.get(req.name) ?? []), req]);
    }
    const next = new Map<string, Packet>();
    const roundErrors: string[] = [];
    for (const name of [...wanted.keys()].sort()) {
      const reqs = wanted.get(name) as App[];
      const pinned = explicit.get(name);
      if (pinned) {
        if (reqs.some((req) => !isCandidate(pinned, req, device))) roundErrors.push('conflicting_app');
        continue;
      }
      const candidates = fleet.packets.filter((p) => reqs.every((req) => isCandidate(p, req, device)));
      const pick = best(
        candidates,
        reqs.some((req) => req.version !== undefined),
      );
      if (pick.ok) next.set(name, pick.packet);
      else if (
        pick.code === 'no_matching_packet' &&
        reqs.length > 1 &&
        reqs.every((req) => fleet.packets.some((p) => isCandidate(p, req, device)))
      ) {
        // Each requirement alone is satisfiable, but not all of them at once.
        roundErrors.push('conflicting_app');
      } else roundErrors.push(pick.code);
    }
    const settled = next.size === derived.size && [...next].every(([n, p]) => derived.get(n) === p);
    derived = next;
    // A round's errors count only once the choices have settled (a packet replaced in the same round may
    // have caused them); choices that never settle are reported as a cycle.
    if (settled) {
      if (roundErrors.length > 0) return fail(roundErrors);
      break;
    }
  }

  const chosen = new Map<string, Packet>([...explicit, ...derived]);
  if (hasCycle(chosen)) return fail(['dependency_cycle']);
  return { ok: true, packets: [...chosen.values()].map(packetId).sort() };
}

/** The engine's result in the reference's comparable shape. */
export function canonical(state: DesiredState): CanonicalState {
  if (state.ok) return { ok: true, packets: state.packets.map((d) => packetId(d.packet)).sort() };
  return fail(state.errors.map((e) => e.code));
}
