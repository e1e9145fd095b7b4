import fc from 'fast-check';
import { minimatch } from 'minimatch';
import { describe, expect, it } from 'vitest';
import type { App, Device, Fleet, InstalledPacket, Labels, Packet, Spec } from '../src/schema/fleet.js';
import { labelsKey } from '../src/schema/labels.js';
import { parseFleet } from '../src/schema/parse-fleet.js';
import type { SourceFile } from '../src/schema/parse-yaml-documents.js';
import { applyingSpecs, indexFleet } from '../src/reconciler/index-fleet.js';
import { planActions } from '../src/reconciler/plan-actions.js';
import type { DesiredPacket } from '../src/reconciler/desired-packet.js';
import { resolveDesiredState, type DesiredState } from '../src/reconciler/resolve-desired-state.js';
import { narrowFleet } from '../src/reconciler/narrow-fleet.js';
import { resolveFleet } from '../src/reconciler/resolve-fleet.js';
import { inRollout, rolloutBucket } from '../src/reconciler/rollout-bucket.js';
import { app, device, fleet, packet, spec } from './support/build-fleet.js';

/*
 * Property tests of the matching rules (DESIGN.md §2) over small random fleets. The alphabet is kept tiny
 * so that targets match, candidates tie, specs conflict and requires chain or cycle often enough.
 */

// ---------------------------------------------------------------------------------------------------------
// The alphabet

const LABEL_VALUES = {
  arch: ['armv7l', 'x86_64'],
  fleet: ['alpha', 'beta'],
  site: ['eu-west', 'us-east', 'eu-north'],
  // The empty value is a present key (DESIGN §2 Labels): it must never be confused with an absent one.
  channel: ['stable', 'beta', ''],
  hw: ['cam-v1', 'cam-v2'],
  version: ['1.0.0', '1.2.0', '2.0.0'],
} as const satisfies Record<string, readonly string[]>;

/** Every (key, value) pair of the alphabet. */
const PAIRS: readonly (readonly [string, string])[] = Object.entries(LABEL_VALUES).flatMap(([k, vs]) =>
  vs.map((v) => [k, v] as const),
);

/** Target values may also be globs: `eu-*` matches eu-west and eu-north, not us-east. */
const TARGET_PAIRS: readonly (readonly [string, string])[] = [
  ...PAIRS.filter(([k]) => k !== 'version'),
  ['site', 'eu-*'],
  ['site', '{eu-west,us-east}'],
  ['site', '!eu-*'],
  ['hw', 'cam-*'],
];

const PACKET_NAMES = ['logger', 'runtime', 'camera', 'agent'] as const;
const VERSION_RANGES = ['^1', '>=1.2.0', '>=1.0.0', '^2', '1.x'] as const;
const PERCENTS = [0, 5, 25, 33.33, 50, 99.99, 100] as const;

/** A key that no target, no packet and no pinned app label of the alphabet ever mentions. */
const UNUSED_KEY = 'zz-unused';

/** `PROPERTY_SCALE=20 npx vitest run test/properties.test.ts` runs every property 20 times as often. */
const SCALE = Number(process.env.PROPERTY_SCALE ?? '1');
const runs = (n: number) => Math.max(1, Math.round(n * SCALE));

// ---------------------------------------------------------------------------------------------------------
// Arbitraries

function toRecord(pairs: readonly (readonly [string, string])[]): Record<string, string> {
  const record: Record<string, string> = {};
  for (const [k, v] of pairs) record[k] = v;
  return record;
}

/** A labelset of `min` to `max` labels over `pairs`, unique keys. */
function labelsArb(pairs: readonly (readonly [string, string])[], max: number, min = 0) {
  return fc
    .uniqueArray(fc.constantFrom(...pairs), { selector: ([k]) => k, minLength: min, maxLength: max })
    .map((ps) => toRecord(ps));
}

const NON_VERSION_PAIRS = PAIRS.filter(([k]) => k !== 'version');

/**
 * An app pins 0–2 labels; it often also asks for a version, either as a semver range or by pinning the
 * `version` label (an app with neither only matches packets without a `version` label, or devices that
 * carry one).
 */
function appArb(names: readonly string[], maxPinned: number): fc.Arbitrary<App> {
  return fc
    .record({
      name: fc.constantFrom(...names),
      pinned: labelsArb(NON_VERSION_PAIRS, maxPinned),
      version: fc.oneof(
        { arbitrary: fc.record({ range: fc.constantFrom(...VERSION_RANGES) }), weight: 2 },
        { arbitrary: fc.record({ pin: fc.constantFrom(...LABEL_VALUES.version) }), weight: 2 },
        { arbitrary: fc.constant({}), weight: 1 },
      ),
    })
    .map(({ name, pinned, version }) =>
      'pin' in version
        ? app(name, { ...pinned, version: version.pin })
        : app(name, pinned, 'range' in version ? version.range : undefined),
    );
}

/** Packets have 0–3 labels: often a `version`, plus up to two others. */
const packetLabelsArb = fc
  .record({
    version: fc.option(fc.constantFrom(...LABEL_VALUES.version), { nil: undefined, freq: 2 }),
    others: fc.oneof(
      { arbitrary: labelsArb(NON_VERSION_PAIRS, 0), weight: 3 },
      { arbitrary: labelsArb(NON_VERSION_PAIRS, 1, 1), weight: 2 },
      { arbitrary: labelsArb(NON_VERSION_PAIRS, 2, 2), weight: 1 },
    ),
  })
  .map(({ version, others }) => (version === undefined ? others : { ...others, version }));

/** 1–4 packets of a name, some requiring another name (optionally with a range or pinned labels). */
function packetsOfArb(name: string): fc.Arbitrary<Packet[]> {
  const packetArb = fc
    .record({
      labels: packetLabelsArb,
      requires: fc.oneof(
        { arbitrary: fc.constant<App[]>([]), weight: 2 },
        {
          arbitrary: fc.array(
            appArb(
              PACKET_NAMES.filter((n) => n !== name),
              1,
            ),
            { minLength: 1, maxLength: 2 },
          ),
          weight: 1,
        },
      ),
    })
    .map(({ labels, requires }) => packet(name, labels, requires));
  return fc.array(packetArb, { minLength: 1, maxLength: 4 });
}

interface SpecShape {
  target: Record<string, string>;
  priority: number;
  percent: number | undefined;
  apps: App[];
}

const specShapeArb: fc.Arbitrary<SpecShape> = fc.record({
  target: fc.oneof(
    { arbitrary: labelsArb(TARGET_PAIRS, 1), weight: 3 },
    { arbitrary: labelsArb(TARGET_PAIRS, 2, 2), weight: 1 },
  ),
  priority: fc.integer({ min: 0, max: 2 }),
  percent: fc.option(fc.constantFrom(...PERCENTS), { nil: undefined, freq: 3 }),
  apps: fc.array(appArb(PACKET_NAMES, 2), { maxLength: 3 }),
});

function dedupePackets(packets: readonly Packet[]): Packet[] {
  const seen = new Set<string>();
  return packets.filter((p) => {
    const key = `${p.name}\u0000${labelsKey(p.labels)}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

const fleetArb: fc.Arbitrary<Fleet> = fc
  .record({
    packets: fc.tuple(...PACKET_NAMES.map(packetsOfArb)).map((lists) => lists.flat()),
    specs: fc.array(specShapeArb, { minLength: 1, maxLength: 4 }),
  })
  .map(({ packets, specs }) =>
    fleet(
      dedupePackets(packets),
      specs.map((s, i) =>
        spec(`spec-${i}`, s.target, s.apps, {
          priority: s.priority,
          ...(s.percent === undefined ? {} : { percent: s.percent }),
        }),
      ),
    ),
  );

const devicesArb: fc.Arbitrary<Device[]> = fc
  .array(labelsArb(PAIRS, 6, 3), { minLength: 1, maxLength: 6 })
  .map((list) => list.map((labels, i) => device(`dev-${i}`, labels)));

const fleetAndDevicesArb = fc.record({ fleet: fleetArb, devices: devicesArb });

// ---------------------------------------------------------------------------------------------------------
// Helpers

/** What a desired state means, independent of input order and of message wording. */
function canonical(state: DesiredState): unknown {
  if (!state.ok) return { errors: state.errors.map((e) => e.code).sort() };
  return {
    packets: state.packets
      .map(
        (d) =>
          `${d.packet.name}${labelsKey(d.packet.labels)} specs=${d.specs.join(',')} requiredBy=${d.requiredBy.join(',')} dependsOn=${d.dependsOn.join(',')}`,
      )
      .sort(),
    warnings: [...state.warnings].sort(),
  };
}

function withLabel(d: Device, key: string, value: string): Device {
  return device(d.id, { ...toRecord(Object.entries(d.labels)), [key]: value });
}

function installedOf(desired: readonly DesiredPacket[]): InstalledPacket[] {
  return desired.map((d) => ({
    name: d.packet.name,
    labels: d.packet.labels,
    sha256: d.packet.artifact.sha256,
    requires: d.dependsOn,
  }));
}

/** A YAML scalar: plain when that cannot change its meaning, else double-quoted (JSON is YAML). */
function scalar(value: string): string {
  return /^[a-z][a-z0-9._-]*$|^\d+\.\d+\.\d+$/.test(value) ? value : JSON.stringify(value);
}

function flowMap(labels: Labels): string {
  const keys = Object.keys(labels);
  return `{ ${keys.map((k) => `${scalar(k)}: ${scalar(labels[k] ?? '')}`).join(', ')} }`;
}

function appsYaml(field: string, apps: readonly App[]): string[] {
  if (apps.length === 0) return [];
  return [
    `${field}:`,
    ...apps.map(
      (a) =>
        `  - { name: ${a.name}, labels: ${flowMap(a.labels)}${a.version === undefined ? '' : `, version: ${JSON.stringify(a.version)}`} }`,
    ),
  ];
}

/** The fleet as repository files: fleet.yaml, one file per packet and one per spec. */
function fleetFiles(f: Fleet): SourceFile[] {
  const files: SourceFile[] = [{ path: 'fleet.yaml', data: 'kind: Fleet\n' }];
  f.packets.forEach((p, i) => {
    const lines = [
      'kind: Packet',
      `name: ${p.name}`,
      `labels: ${flowMap(p.labels)}`,
      'artifact:',
      `  url: ${p.artifact.url}`,
      `  sha256: ${JSON.stringify(p.artifact.sha256)}`,
      `  size: ${p.artifact.size}`,
      ...appsYaml('requires', p.requires),
    ];
    files.push({ path: `packets/p${i}.yaml`, data: `${lines.join('\n')}\n` });
  });
  for (const s of f.specs) {
    const lines = [
      'kind: Spec',
      `id: ${s.id}`,
      ...(Object.keys(s.target).length > 0 ? [`target: ${flowMap(s.target)}`] : []),
      `priority: ${s.priority}`,
      ...(s.rollout === undefined ? [] : [`rollout: { percent: ${s.rollout.percent} }`]),
      ...appsYaml('apps', s.apps),
    ];
    files.push({ path: `specs/${s.id}.yaml`, data: `${lines.join('\n')}\n` });
  }
  return files;
}

function parseOk(files: SourceFile[]): Fleet {
  const parsed = parseFleet(files);
  if (!parsed.ok) throw new Error(`generated fleet does not parse: ${JSON.stringify(parsed.errors)}`);
  return parsed.value;
}

/** A permutation of `list` as a shuffledSubarray of full length. */
function permutationArb<T>(list: readonly T[]): fc.Arbitrary<T[]> {
  return fc.shuffledSubarray([...list], { minLength: list.length, maxLength: list.length });
}

// ---------------------------------------------------------------------------------------------------------
// Properties

describe('matching rules (properties)', () => {
  it('the generator exercises every outcome the properties are about', () => {
    // Not a property of gitfleet but of this file: a fleet generator that never produces ties, conflicts,
    // cycles, glob targets or requires would make the properties below vacuous.
    const wanted = [
      'ambiguous_match',
      'conflicting_app',
      'dependency_cycle',
      'glob target applies',
      'no_matching_packet',
      'ok',
      'ok, empty',
      'ok, with a fallback warning',
      'ok, with requires',
      'partial rollout applies',
    ];
    const seen = new Set<string>();
    for (let batch = 0; batch < 20 && seen.size < wanted.length; batch++) {
      for (const { fleet: f, devices } of fc.sample(fleetAndDevicesArb, { numRuns: 100, seed: 42 + batch })) {
        const index = indexFleet(f);
        for (const d of devices) {
          for (const s of applyingSpecs(index, d)) {
            if (Object.values(s.target).some((v) => /[*{!]/.test(v))) seen.add('glob target applies');
            if (s.rollout && s.rollout.percent > 0 && s.rollout.percent < 100)
              seen.add('partial rollout applies');
          }
          const state = resolveDesiredState(index, d);
          if (!state.ok) for (const e of state.errors) seen.add(e.code);
          else if (state.packets.length === 0) seen.add('ok, empty');
          else {
            seen.add('ok');
            if (state.packets.some((p) => p.requiredBy.length > 0)) seen.add('ok, with requires');
            if (state.warnings.length > 0) seen.add('ok, with a fallback warning');
          }
        }
      }
    }
    expect([...seen].sort()).toEqual(wanted.sort());
  });

  it('1a. shuffling packets and specs never changes a desired state', () => {
    fc.assert(
      fc.property(
        fleetAndDevicesArb.chain(({ fleet: f, devices }) =>
          fc.record({
            fleet: fc.constant(f),
            devices: fc.constant(devices),
            packets: permutationArb(f.packets),
            specs: permutationArb(f.specs),
          }),
        ),
        ({ fleet: f, devices, packets, specs }) => {
          const shuffled: Fleet = { ...f, packets, specs };
          const before = resolveFleet(f, devices).map(canonical);
          const after = resolveFleet(shuffled, devices).map(canonical);
          expect(after).toEqual(before);
        },
      ),
      { numRuns: runs(500) },
    );
  });

  it('1b. shuffling the files given to parseFleet never changes the parsed fleet', () => {
    fc.assert(
      fc.property(
        fleetAndDevicesArb.chain(({ fleet: f, devices }) => {
          const files = fleetFiles(f);
          return fc.record({
            fleet: fc.constant(f),
            devices: fc.constant(devices),
            files: fc.constant(files),
            shuffled: permutationArb(files),
          });
        }),
        ({ fleet: f, devices, files, shuffled }) => {
          const a = parseOk(files);
          const b = parseOk(shuffled);
          expect(b).toEqual(a);
          const resolvedA = resolveFleet(a, devices).map(canonical);
          expect(resolveFleet(b, devices).map(canonical)).toEqual(resolvedA);
          // And the YAML round trip means what the in-memory fleet means.
          expect(resolvedA).toEqual(resolveFleet(f, devices).map(canonical));
        },
      ),
      { numRuns: runs(200) },
    );
  });

  it('2a. widening a rollout percent only adds devices (bucket level)', () => {
    const percentArb = fc.oneof(
      fc.integer({ min: 0, max: 10_000 }).map((n) => n / 100),
      fc.double({ min: 0, max: 100, noNaN: true }),
      fc.constantFrom(...PERCENTS),
    );
    const deviceIds = Array.from({ length: 300 }, (_, i) => `dev-${i}`);
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 12 }),
        percentArb,
        percentArb,
        fc.array(fc.string({ maxLength: 12 }), { maxLength: 20 }),
        (specId, p, q, extraIds) => {
          const [low, high] = p <= q ? [p, q] : [q, p];
          for (const id of [...deviceIds, ...extraIds]) {
            if (inRollout(specId, id, low)) expect(inRollout(specId, id, high)).toBe(true);
          }
        },
      ),
      { numRuns: runs(200) },
    );
  });

  it('2b. widening a rollout percent only grows the set of applying specs', () => {
    fc.assert(
      fc.property(
        fleetAndDevicesArb,
        fc.nat(),
        fc.integer({ min: 0, max: 10_000 }),
        fc.integer({ min: 0, max: 10_000 }),
        ({ fleet: f, devices }, which, p, q) => {
          const [low, high] = p <= q ? [p / 100, q / 100] : [q / 100, p / 100];
          const target = f.specs[which % f.specs.length]!;
          const at = (percent: number): Fleet => ({
            ...f,
            specs: f.specs.map((s): Spec => (s === target ? { ...s, rollout: { percent } } : s)),
          });
          const narrow = indexFleet(at(low));
          const wide = indexFleet(at(high));
          for (const d of devices) {
            const before = applyingSpecs(narrow, d).map((s) => s.id);
            const after = applyingSpecs(wide, d).map((s) => s.id);
            expect(after).toEqual(expect.arrayContaining(before));
            // Nothing else changed: the same applying specs give the same desired state.
            if (before.length === after.length) {
              expect(canonical(resolveDesiredState(wide, d))).toEqual(
                canonical(resolveDesiredState(narrow, d)),
              );
            }
          }
        },
      ),
      { numRuns: runs(500) },
    );
  });

  it('3. a device label that no target and no packet mentions never changes the desired state', () => {
    fc.assert(
      fc.property(
        fleetAndDevicesArb,
        fc.constantFrom('', 'x', 'eu-west', '1.0.0', 'beta'),
        ({ fleet: f, devices }, value) => {
          const extended = devices.map((d) => withLabel(d, UNUSED_KEY, value));
          expect(resolveFleet(f, extended).map(canonical)).toEqual(resolveFleet(f, devices).map(canonical));
        },
      ),
      { numRuns: runs(500) },
    );
  });

  it('4. planning is empty from the desired state, and installs dependencies first from nothing', () => {
    let planned = 0;
    fc.assert(
      fc.property(fleetAndDevicesArb, ({ fleet: f, devices }) => {
        for (const state of resolveFleet(f, devices)) {
          if (!state.ok) continue;
          planned += state.packets.length;
          expect(planActions(state.packets, installedOf(state.packets), { allowEmpty: false })).toEqual({
            ok: true,
            actions: [],
          });

          const fresh = planActions(state.packets, [], { allowEmpty: false });
          expect(fresh.ok).toBe(true);
          if (!fresh.ok) continue;
          expect(fresh.actions.map((a) => a.type)).toEqual(state.packets.map(() => 'install'));
          expect(fresh.actions.map((a) => a.name).sort()).toEqual(state.packets.map((d) => d.packet.name));
          const position = new Map(fresh.actions.map((a, i) => [a.name, i]));
          for (const d of state.packets) {
            for (const dep of d.dependsOn) {
              expect(position.get(dep)).toBeDefined();
              expect(position.get(dep)!).toBeLessThan(position.get(d.packet.name)!);
            }
          }
        }
      }),
      { numRuns: runs(500) },
    );
    expect(planned).toBeGreaterThan(0);
  });

  it('5. rollout buckets are in [0, 9999] and deterministic; 0 % includes none, 100 % all', () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 16 }),
        fc.string({ maxLength: 16 }),
        fc.integer({ min: 0, max: 10_000 }),
        (specId, deviceId, hundredths) => {
          const bucket = rolloutBucket(specId, deviceId);
          expect(Number.isInteger(bucket)).toBe(true);
          expect(bucket).toBeGreaterThanOrEqual(0);
          expect(bucket).toBeLessThanOrEqual(9999);
          expect(rolloutBucket(specId, deviceId)).toBe(bucket);
          expect(inRollout(specId, deviceId, 0)).toBe(false);
          expect(inRollout(specId, deviceId, 100)).toBe(true);
          // Rule 2 for percents given to two decimals: bucket < percent × 100, right at the edge too.
          expect(inRollout(specId, deviceId, hundredths / 100)).toBe(bucket < hundredths);
          expect(inRollout(specId, deviceId, bucket / 100)).toBe(false);
          expect(inRollout(specId, deviceId, (bucket + 1) / 100)).toBe(true);
        },
      ),
      { numRuns: runs(2000) },
    );
  });

  it('6. resolving is deterministic, with a fresh index, a warm shared one and a narrowed fleet', () => {
    fc.assert(
      fc.property(
        fleetAndDevicesArb.chain(({ fleet: f, devices }) =>
          fc.record({ fleet: fc.constant(f), devices: fc.constant(devices), order: permutationArb(devices) }),
        ),
        ({ fleet: f, devices, order }) => {
          const fresh = devices.map((d) => resolveDesiredState(indexFleet(f), d));
          for (const [i, d] of devices.entries()) {
            expect(resolveDesiredState(indexFleet(f), d)).toEqual(fresh[i]);
          }
          // A shared index warmed up by the other devices first (in another order) gives the same answers.
          const shared = indexFleet(f);
          for (const d of order) resolveDesiredState(shared, d);
          for (const [i, d] of devices.entries()) {
            expect(resolveDesiredState(shared, d)).toEqual(fresh[i]);
          }
          expect(resolveFleet(f, order)).toEqual(order.map((d) => fresh[devices.indexOf(d)]));
          // One device against only the part of the fleet that can matter to it (what plan uses).
          for (const [i, d] of devices.entries()) {
            expect(resolveDesiredState(indexFleet(narrowFleet(f, d)), d)).toEqual(fresh[i]);
          }
        },
      ),
      { numRuns: runs(500) },
    );
  });

  it('7. the applying specs are exactly those of rules 1 and 2, read literally', () => {
    // The index anchors specs on one key and caches glob hits; this checks it against a plain scan.
    const matches = (pattern: string, value: string) =>
      /[*?[\]{}]/.test(pattern) || pattern.startsWith('!')
        ? minimatch(value, pattern, { dot: true, nocomment: true })
        : value === pattern;
    fc.assert(
      fc.property(fleetAndDevicesArb, ({ fleet: f, devices }) => {
        const index = indexFleet(f);
        for (const d of devices) {
          const expected = f.specs
            .filter(
              (s) =>
                Object.entries(s.target).every(
                  ([k, v]) => Object.hasOwn(d.labels, k) && matches(v, d.labels[k]!),
                ) &&
                (s.rollout === undefined || rolloutBucket(s.id, d.id) < s.rollout.percent * 100),
            )
            .map((s) => s.id)
            .sort();
          expect(applyingSpecs(index, d).map((s) => s.id)).toEqual(expected);
        }
      }),
      { numRuns: runs(500) },
    );
  });

  it('8. rule 3: only the highest priority asking for an app counts, and is credited', () => {
    fc.assert(
      fc.property(fleetAndDevicesArb, ({ fleet: f, devices }) => {
        const index = indexFleet(f);
        for (const d of devices) {
          const state = resolveDesiredState(index, d);
          const applying = applyingSpecs(index, d);
          const top = new Map<string, number>();
          for (const s of applying) {
            for (const a of s.apps) top.set(a.name, Math.max(s.priority, top.get(a.name) ?? s.priority));
          }
          // Dropping every ask that a higher-priority applying spec overrides changes nothing.
          const ids = new Set(applying.map((s) => s.id));
          const undominated: Fleet = {
            ...f,
            specs: f.specs.map((s): Spec =>
              ids.has(s.id) ? { ...s, apps: s.apps.filter((a) => s.priority >= top.get(a.name)!) } : s,
            ),
          };
          expect(canonical(resolveDesiredState(indexFleet(undominated), d))).toEqual(canonical(state));
          if (!state.ok) continue;
          // Every app asked for is desired, credited to exactly the applying specs of the top priority.
          const credited = new Map(state.packets.map((p) => [p.packet.name, p.specs]));
          for (const [name, priority] of top) {
            const expected = applying
              .filter((s) => s.priority === priority && s.apps.some((a) => a.name === name))
              .map((s) => s.id);
            expect(credited.get(name)).toEqual(expected);
          }
          for (const p of state.packets) if (!top.has(p.packet.name)) expect(p.specs).toEqual([]);
        }
      }),
      { numRuns: runs(500) },
    );
  });

  // Found by fast-check (~50 000 random fleets, too many for this file, so pinned as an example): round 0
  // picks b@2.0.0 (a asks for b >=1.0.0); round 1 replaces it by b@1.0.0 (c asks for b ^1). The replaced
  // b@2.0.0's `d ^2` must not count against c's `d ^1`: the settled choice satisfies every requirement.
  it('requires closure ignores conflicts of a choice replaced in the same round', () => {
    const f = fleet(
      [
        packet('a', {}, [app('b', {}, '>=1.0.0'), app('c')]),
        packet('b', { version: '1.0.0' }),
        packet('b', { version: '2.0.0' }, [app('d', {}, '^2')]),
        packet('c', {}, [app('b', {}, '^1'), app('d', {}, '^1')]),
        packet('d', { version: '1.0.0' }),
        packet('d', { version: '2.0.0' }),
      ],
      [spec('s', {}, [app('a')])],
    );
    const state = resolveDesiredState(indexFleet(f), device('x'));
    expect(
      state.ok
        ? state.packets.map((d) => `${d.packet.name}@${d.packet.labels.version ?? '-'}`)
        : state.errors,
    ).toEqual(['a@-', 'b@1.0.0', 'c@-', 'd@1.0.0']);
  });
});
