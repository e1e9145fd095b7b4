import { sha256 } from '@noble/hashes/sha2.js';
import fc from 'fast-check';
import { minimatch } from 'minimatch';
import { describe, expect, it } from 'vitest';
import { generateFleet } from '../bench/generate-fleet.js';
import { applyingSpecs, indexFleet } from '../src/reconciler/index-fleet.js';
import { resolveDesiredState } from '../src/reconciler/resolve-desired-state.js';
import { resolveFleet } from '../src/reconciler/resolve-fleet.js';
import { rolloutBucket } from '../src/reconciler/rollout-bucket.js';
import type { Spec } from '../src/schema/fleet.js';
import { app, device, fleet, packet, spec } from './support/build-fleet.js';

// The resolver's speed comes from structures shared between devices (target bitsets, per-class tables,
// memoised joins and requires closures) and from its own SHA-256. These tests pin that each of them
// gives exactly what the plain rules give.

/** DESIGN.md rule 2, with a general-purpose SHA-256. */
function plainBucket(specId: string, deviceId: string): number {
  let bucket = 0;
  for (const byte of sha256(new TextEncoder().encode(`${specId}/${deviceId}`))) {
    bucket = (bucket * 256 + byte) % 10000;
  }
  return bucket;
}

describe('rollout buckets', () => {
  // Lone surrogates, multi-byte characters and inputs longer than one SHA-256 block.
  const unit = fc.oneof(
    fc.constantFrom('a', '-', '0', '/', 'é', '中', '😀', '\ud800', '\udfff', '\u0000', '\u07ff', '\uffff'),
    fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
  );
  const text = fc.array(unit, { maxLength: 90 }).map((units) => units.join(''));

  it('are sha256(spec id + "/" + device id) mod 10000 for any text', () => {
    fc.assert(
      fc.property(text, text, (specId, deviceId) => {
        expect(rolloutBucket(specId, deviceId)).toBe(plainBucket(specId, deviceId));
      }),
      { numRuns: 2000 },
    );
  });

  it('are right at every input length around the block boundaries', () => {
    for (let length = 0; length < 200; length++) {
      const deviceId = 'd'.repeat(length);
      expect(rolloutBucket('s', deviceId)).toBe(plainBucket('s', deviceId));
    }
  });
});

describe('target bitsets', () => {
  it('find exactly the specs of rule 1 among many specs (several words of bits)', () => {
    const keys = ['fleet', 'site', 'hw'];
    const values = ['a', 'b', 'c', 'ab', ''];
    const patterns = [...values, 'a*', '!a', '{b,c}', '?'];
    const targetArb = fc.dictionary(fc.constantFrom(...keys), fc.constantFrom(...patterns), { maxKeys: 3 });
    const labelsArb = fc.dictionary(fc.constantFrom(...keys, 'id'), fc.constantFrom(...values), {
      maxKeys: 4,
    });
    fc.assert(
      fc.property(
        fc.array(targetArb, { minLength: 30, maxLength: 140 }),
        fc.array(labelsArb, { minLength: 1, maxLength: 12 }),
        (targets, devices) => {
          const specs: Spec[] = targets.map((target, i) =>
            spec(`s-${String(i).padStart(3, '0')}`, target, []),
          );
          const index = indexFleet(fleet([], specs));
          for (const [i, labels] of devices.entries()) {
            const d = device(`d-${i}`, labels);
            const expected = specs
              .filter((s) =>
                Object.entries(s.target).every(([k, v]) => {
                  if (!Object.hasOwn(d.labels, k)) return false;
                  const value = d.labels[k] ?? '';
                  return /[*?[\]{}]/.test(v) || v.startsWith('!')
                    ? minimatch(value, v, { dot: true, nocomment: true })
                    : value === v;
                }),
              )
              .map((s) => s.id);
            expect(applyingSpecs(index, d).map((s) => s.id)).toEqual(expected);
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('shared results', () => {
  it('resolveFleet gives every device what a fresh index gives it, field for field', () => {
    const { fleet: f, devices } = generateFleet(5, { devices: 400, specs: 150, packets: 1_000 });
    const shared = resolveFleet(f, devices);
    devices.forEach((d, i) => {
      expect(shared[i]).toEqual(resolveDesiredState(indexFleet(f), d));
    });
  });

  it('a shared requires closure still credits each device its own specs', () => {
    // Both devices choose the same packets, so they share one closure, but through different specs.
    const f = fleet(
      [packet('a', {}, [app('b')]), packet('b')],
      [spec('one', { fleet: 'x' }, [app('a')]), spec('two', { fleet: 'y' }, [app('a')])],
    );
    const [x, y] = resolveFleet(f, [device('d-x', { fleet: 'x' }), device('d-y', { fleet: 'y' })]);
    const summary = (state: typeof x) =>
      state?.ok
        ? state.packets.map((p) => `${p.packet.name} ${p.specs.join(',')} <- ${p.requiredBy.join(',')}`)
        : [];
    expect(summary(x)).toEqual(['a one <- ', 'b  <- a']);
    expect(summary(y)).toEqual(['a two <- ', 'b  <- a']);
  });

  it('a requires closure is shared only by devices whose labels give the required apps the same picks', () => {
    // `lib` varies by arch only: devices of other hw share the closure, devices of another arch do not.
    const f = fleet(
      [
        packet('app', { hw: 'h1' }, [app('lib')]),
        packet('app', { hw: 'h2' }, [app('lib')]),
        packet('lib', { arch: 'amd64' }),
        packet('lib', { arch: 'arm64' }),
      ],
      [spec('all', {}, [app('app')])],
    );
    const devices = [
      device('d-1', { arch: 'amd64', hw: 'h1' }),
      device('d-2', { arch: 'arm64', hw: 'h1' }),
      device('d-3', { arch: 'amd64', hw: 'h2' }),
      device('d-4', { arch: 'riscv64', hw: 'h2' }),
    ];
    const states = resolveFleet(f, devices);
    const libs = states.map((s) =>
      s.ok
        ? s.packets.filter((p) => p.packet.name === 'lib').map((p) => p.packet.labels.arch)
        : s.errors[0]?.code,
    );
    expect(libs).toEqual([['amd64'], ['arm64'], ['amd64'], 'no_matching_packet']);
    devices.forEach((d, i) => expect(states[i]).toEqual(resolveDesiredState(indexFleet(f), d)));
  });

  it("an outcome shared between classes keeps each request's own spec and warning", () => {
    // `tool` has one packet without hw: every class gets the same pick, through two specs pinning hw.
    const f = fleet(
      [packet('tool', { arch: 'amd64' }), packet('hwinfo', { hw: 'h1' }), packet('hwinfo', { hw: 'h2' })],
      [
        spec('one', { fleet: 'x' }, [app('tool', { hw: 'h1' }), app('hwinfo')]),
        spec('two', { fleet: 'y' }, [app('tool', { hw: 'h1' }), app('hwinfo')]),
      ],
    );
    const devices = [
      device('d-1', { fleet: 'x', arch: 'amd64', hw: 'h1' }),
      device('d-2', { fleet: 'y', arch: 'amd64', hw: 'h2' }),
    ];
    const states = resolveFleet(f, devices);
    const seen = states.map((s) =>
      s.ok ? [...s.packets.map((p) => `${p.packet.name} ${p.specs.join(',')}`), ...s.warnings] : [],
    );
    expect(seen).toEqual([
      [
        'hwinfo one',
        'tool one',
        'spec one pins hw for tool, but the chosen packet tool {arch: amd64} has no such label (generic fallback)',
      ],
      [
        'hwinfo two',
        'tool two',
        'spec two pins hw for tool, but the chosen packet tool {arch: amd64} has no such label (generic fallback)',
      ],
    ]);
    devices.forEach((d, i) => expect(states[i]).toEqual(resolveDesiredState(indexFleet(f), d)));
  });

  it('devices of one class with the same applying specs share one result, each with its own device', () => {
    // Same labels but for the id: only the canary's rollout tells the devices apart.
    const f = fleet(
      [packet('a', { arch: 'amd64' }), packet('b', { arch: 'amd64' })],
      [spec('all', {}, [app('a')]), spec('canary', {}, [app('b')], { percent: 50 })],
    );
    const devices = Array.from({ length: 40 }, (_, i) => device(`d-${i}`, { arch: 'amd64' }));
    const states = resolveFleet(f, devices);
    const lists = states.map((s) => (s.ok ? s.packets : undefined));
    expect(new Set(lists.map((l) => l?.length))).toEqual(new Set([1, 2]));
    // One list for the devices in the canary, one for the others.
    expect(new Set(lists).size).toBe(2);
    devices.forEach((d, i) => {
      expect(states[i]?.device).toBe(d);
      expect(states[i]).toEqual(resolveDesiredState(indexFleet(f), d));
    });
    // A failing device's errors are shared the same way.
    const broken = fleet([], [spec('all', {}, [app('missing')])]);
    const failed = resolveFleet(broken, [device('d-1', {}), device('d-2', {})]);
    expect(failed.map((s) => s.device.id)).toEqual(['d-1', 'd-2']);
    const errors = failed.map((s) => (s.ok ? undefined : s.errors));
    expect(errors[0]?.[0]?.code).toBe('no_matching_packet');
    expect(errors[1]).toBe(errors[0]);
  });

  it('equal-priority requests joined for one device are joined afresh for another set of specs', () => {
    const f = fleet(
      [packet('a')],
      [
        spec('one', {}, [app('a')]),
        spec('two', { fleet: 'x' }, [app('a')]),
        spec('three', { hw: 'h' }, [app('a')]),
      ],
    );
    const states = resolveFleet(f, [
      device('d-1', { fleet: 'x' }),
      device('d-2', { fleet: 'x', hw: 'h' }),
      device('d-3', { hw: 'h' }),
      device('d-4', { fleet: 'x' }),
    ]);
    expect(states.map((s) => (s.ok ? s.packets.map((p) => p.specs.join(',')) : []))).toEqual([
      ['one,two'],
      ['one,three,two'],
      ['one,three'],
      ['one,two'],
    ]);
  });
});
