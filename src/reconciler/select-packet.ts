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
 * The test of an app's `version` range on a packet's `version` (undefined: it has none), or undefined
 * when the app has no range. An invalid range or version satisfies nothing.
 */
export function rangeTest(app: App): ((version: string | undefined) => boolean) | undefined {
  if (app.version === undefined) return undefined;
  const range = parseRange(app.version);
  return (version) => range !== null && version !== undefined && satisfies(range, version);
}

/**
 * Ranks of versions by value id (`values` maps each to its id; id 0, none, and values that are not
 * versions count as 0.0.0): a newer version ranks higher, versions of equal precedence rank alike.
 */
export function rankVersions(values: ReadonlyMap<string, number> | undefined): Int32Array {
  const parsed = [{ id: 0, version: zero }];
  for (const [value, id] of values ?? []) parsed.push({ id, version: parseVersion(value) ?? zero });
  parsed.sort((a, b) => a.version.compare(b.version));
  const ranks = new Int32Array(parsed.length);
  let rank = 0;
  parsed.forEach(({ id, version }, i) => {
    if (i > 0 && version.compare((parsed[i - 1] as (typeof parsed)[number]).version) !== 0) rank++;
    ranks[id] = rank;
  });
  return ranks;
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
 * Rule 4's answer from a ranked candidate list whose first `tied` candidates rank alike: the first when it
 * alone ranks top, `ambiguous_match` for a tie, `no_matching_packet` for none. Messages name the app, not
 * who asked for it: the caller adds that.
 */
export function selectTop(ranked: readonly Packet[], tied: number, app: App): Selection {
  const first = ranked[0];
  if (!first) {
    const pins = Object.keys(app.labels).length ? ` ${formatLabels(app.labels)}` : '';
    const range = app.version ? ` version ${app.version}` : '';
    return { ok: false, code: 'no_matching_packet', message: `no packet matches ${app.name}${pins}${range}` };
  }
  if (tied > 1) {
    const labels = ranked.slice(0, tied).map((p) => formatLabels(p.labels));
    return {
      ok: false,
      code: 'ambiguous_match',
      message: `${tied} packets match ${app.name} equally well: ${labels.join(', ')}`,
    };
  }
  return { ok: true, packet: first };
}

/** `selectTop` of a list sorted by `compareRank`. */
export function pickTop(ranked: readonly Packet[], app: App, byVersion: boolean): Selection {
  const first = ranked[0];
  let tied = first ? 1 : 0;
  while (first && tied < ranked.length && compareRank(first, ranked[tied] as Packet, byVersion) === 0) tied++;
  return selectTop(ranked, tied, app);
}
