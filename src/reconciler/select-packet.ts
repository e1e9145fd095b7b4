import semver from 'semver';
import type { App, Labels, Packet } from '../schema/fleet.js';
import { formatLabels } from '../schema/labels.js';

export type Selection =
  | { ok: true; packet: Packet }
  | { ok: false; code: 'no_matching_packet' | 'ambiguous_match'; message: string };

// Memoised semver parsing: a fleet has few distinct versions and ranges, and the resolver asks often.
const zero = new semver.SemVer('0.0.0');
const versions = new Map<string, semver.SemVer | null>();
const ranges = new Map<string, semver.Range | null>();

function memo<T>(cache: Map<string, T>, key: string, make: () => T): T {
  let value = cache.get(key);
  if (value === undefined && !cache.has(key)) {
    if (cache.size > 100_000) cache.clear();
    cache.set(key, (value = make()));
  }
  return value as T;
}

function parseVersion(version: string): semver.SemVer | null {
  return memo(versions, version, () => (semver.valid(version) === null ? null : new semver.SemVer(version)));
}

function parseRange(range: string): semver.Range | null {
  return memo(ranges, range, () => (semver.validRange(range) === null ? null : new semver.Range(range)));
}

// Labelsets are immutable once made: their sizes, and which versions satisfy a range, are asked again
// and again while ranking.
const sizes = new WeakMap<Labels, number>();
const satisfied = new WeakMap<semver.Range, Map<string, boolean>>();

function labelCount(packet: Packet): number {
  let size = sizes.get(packet.labels);
  if (size === undefined) sizes.set(packet.labels, (size = Object.keys(packet.labels).length));
  return size;
}

function satisfies(range: semver.Range, version: string): boolean {
  let answers = satisfied.get(range);
  if (!answers) satisfied.set(range, (answers = new Map<string, boolean>()));
  let answer = answers.get(version);
  if (answer === undefined) {
    const parsed = parseVersion(version);
    answers.set(version, (answer = parsed !== null && range.test(parsed)));
  }
  return answer;
}

/**
 * The packets of rule 4 that an app can select on some device, best first: of the packets of its name
 * (`packets`), those that agree with every label the app pins and, with a `version` range, whose
 * `version` satisfies it (then `version` is not compared as a label). Ranked highest version first
 * under a range, then most labels; ties keep the given order. What is left for a device with labels D
 * is the app's candidates on D: those whose other labels all equal D's (see `deviceKeys`).
 */
export function eligiblePackets(packets: readonly Packet[], app: App): Packet[] {
  const range = app.version === undefined ? undefined : parseRange(app.version);
  const eligible = packets.filter((packet) => {
    for (const key in packet.labels) {
      if (range !== undefined && key === 'version') continue;
      if (Object.hasOwn(app.labels, key) && app.labels[key] !== packet.labels[key]) return false;
    }
    if (range === undefined) return true;
    return range !== null && satisfies(range, packet.labels.version ?? '');
  });
  return ranked(eligible, range !== undefined);
}

/** `packets` stably sorted by `compareRank`, each packet's version and label count read once. */
function ranked(packets: readonly Packet[], byVersion: boolean): Packet[] {
  const versions = packets.map((p) => (byVersion ? (parseVersion(p.labels.version ?? '') ?? zero) : zero));
  const counts = packets.map(labelCount);
  return packets
    .map((_, i) => i)
    .sort(
      (a, b) =>
        (versions[b] as semver.SemVer).compare(versions[a] as semver.SemVer) ||
        (counts[b] as number) - (counts[a] as number) ||
        a - b,
    )
    .map((i) => packets[i] as Packet);
}

/**
 * The label keys of an eligible packet that a device must have with the packet's value: every key
 * the app does not pin, except `version` under a range. (Merged labels M = D overlaid by the pins, so
 * these are the keys where M is D.)
 */
export function deviceKeys(packet: Packet, app: App): string[] {
  const ranged = app.version !== undefined;
  return Object.keys(packet.labels).filter(
    (key) => !Object.hasOwn(app.labels, key) && !(ranged && key === 'version'),
  );
}

/** Negative when `a` ranks above `b`; 0 is a tie (ambiguous if it happens at the top). */
export function compareRank(a: Packet, b: Packet, byVersion: boolean): number {
  if (byVersion) {
    const v = (parseVersion(b.labels.version ?? '') ?? zero).compare(
      parseVersion(a.labels.version ?? '') ?? zero,
    );
    if (v !== 0) return v;
  }
  return labelCount(b) - labelCount(a);
}

/**
 * Picks the top of a ranked candidate list; a tie at the top is `ambiguous_match`, none is
 * `no_matching_packet`. Messages name the app, not who asked for it: the caller adds that.
 */
export function pickTop(ranked: readonly Packet[], app: App, byVersion: boolean): Selection {
  const [first, second] = ranked;
  if (!first) {
    const pins = Object.keys(app.labels).length ? ` ${formatLabels(app.labels)}` : '';
    const range = app.version ? ` version ${app.version}` : '';
    return { ok: false, code: 'no_matching_packet', message: `no packet matches ${app.name}${pins}${range}` };
  }
  if (second && compareRank(first, second, byVersion) === 0) {
    const tied = ranked.filter((p) => compareRank(first, p, byVersion) === 0);
    return {
      ok: false,
      code: 'ambiguous_match',
      message: `${tied.length} packets match ${app.name} equally well: ${tied.map((p) => formatLabels(p.labels)).join(', ')}`,
    };
  }
  return { ok: true, packet: first };
}
