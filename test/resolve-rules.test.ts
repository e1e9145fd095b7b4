import { describe, expect, it } from 'vitest';
import { indexFleet } from '../src/reconciler/index-fleet.js';
import { resolveDesiredState, type DesiredState } from '../src/reconciler/resolve-desired-state.js';
import { rolloutBucket } from '../src/reconciler/rollout-bucket.js';
import type { Fleet } from '../src/schema/fleet.js';
import { app, device, fleet, packet, spec } from './support/build-fleet.js';

function resolve(f: Fleet, labels: Record<string, string>, id = 'dev-1'): DesiredState {
  return resolveDesiredState(indexFleet(f), device(id, labels));
}

/** `name {k=v,...}` for each desired packet, or the error codes. */
function summary(state: DesiredState): string[] {
  if (!state.ok) return state.errors.map((e) => `error ${e.code}`);
  return state.packets.map(
    (d) =>
      `${d.packet.name} {${Object.keys(d.packet.labels)
        .sort()
        .map((k) => `${k}=${d.packet.labels[k]}`)
        .join(',')}}`,
  );
}

const logger = (labels: Record<string, string>) => packet('logger', labels);

describe('rule 1: targeting', () => {
  const packets = [logger({})];
  it('applies a spec when every target key is present with an equal value', () => {
    const f = fleet(packets, [spec('s', { fleet: 'alpha', arch: 'arm64' }, [app('logger')])]);
    expect(summary(resolve(f, { fleet: 'alpha', arch: 'arm64', extra: 'ignored' }))).toEqual(['logger {}']);
    expect(summary(resolve(f, { fleet: 'alpha' }))).toEqual([]);
    expect(summary(resolve(f, { fleet: 'alpha', arch: 'amd64' }))).toEqual([]);
  });

  it('matches a value with glob characters as a minimatch pattern', () => {
    const f = fleet(packets, [spec('eu', { site: 'eu-*' }, [app('logger')])]);
    expect(summary(resolve(f, { site: 'eu-west-1' }))).toEqual(['logger {}']);
    expect(summary(resolve(f, { site: 'us-east-1' }))).toEqual([]);
    expect(summary(resolve(f, { site: 'eu' }))).toEqual([]);
  });

  it('supports brace sets and negation in glob values', () => {
    const f = fleet(packets, [
      spec('set', { fleet: '{alpha,beta}' }, [app('logger')]),
      spec('not-lab', { site: '!lab-*' }, [app('logger')]),
    ]);
    expect(summary(resolve(f, { fleet: 'beta' }))).toEqual(['logger {}']);
    expect(summary(resolve(f, { fleet: 'gamma' }))).toEqual([]);
    expect(summary(resolve(f, { site: 'lab-1' }))).toEqual([]);
    expect(summary(resolve(f, { site: 'eu-1' }))).toEqual(['logger {}']);
  });

  it('matches an empty target on every device, even one without labels', () => {
    const f = fleet(packets, [spec('all', {}, [app('logger')])]);
    expect(summary(resolve(f, {}))).toEqual(['logger {}']);
    expect(summary(resolve(f, { anything: 'x' }))).toEqual(['logger {}']);
  });

  it('treats a "" value as present and a missing key as absent', () => {
    const f = fleet(packets, [spec('s', { tier: '' }, [app('logger')])]);
    expect(summary(resolve(f, { tier: '' }))).toEqual(['logger {}']);
    expect(summary(resolve(f, {}))).toEqual([]);
    expect(summary(resolve(f, { tier: 'gold' }))).toEqual([]);
  });

  it('is case-sensitive in keys and values', () => {
    const f = fleet(packets, [spec('s', { fleet: 'alpha' }, [app('logger')])]);
    expect(summary(resolve(f, { fleet: 'Alpha' }))).toEqual([]);
    expect(summary(resolve(f, { Fleet: 'alpha' }))).toEqual([]);
  });

  it('accepts keys with / and .', () => {
    const f = fleet(packets, [spec('s', { 'kubernetes.io/arch': 'arm64' }, [app('logger')])]);
    expect(summary(resolve(f, { 'kubernetes.io/arch': 'arm64' }))).toEqual(['logger {}']);
  });

  it('gives a device that no spec targets an empty desired set', () => {
    const f = fleet(packets, [spec('s', { fleet: 'alpha' }, [app('logger')])]);
    const state = resolve(f, { fleet: 'beta' });
    expect(state.ok).toBe(true);
    expect(summary(state)).toEqual([]);
  });

  it('accepts a spec with no apps', () => {
    const f = fleet(packets, [spec('empty', { fleet: 'alpha' }, []), spec('s', {}, [app('logger')])]);
    expect(summary(resolve(f, { fleet: 'alpha' }))).toEqual(['logger {}']);
  });
});

describe('rule 2: rollout', () => {
  it('computes the bucket as sha256(spec id + "/" + device id) mod 10000', () => {
    // Reference values computed with: printf 'logger-canary/pi-0047' | sha256sum, as a big-endian number mod 10000.
    expect(rolloutBucket('logger-canary', 'pi-0047')).toBe(11);
    expect(rolloutBucket('logger-canary', 'pi-0042')).toBe(8837);
  });

  it('applies the spec only to devices whose bucket is below percent × 100', () => {
    const f = fleet([logger({})], [spec('logger-canary', {}, [app('logger')], { percent: 1 })]);
    expect(summary(resolve(f, {}, 'pi-0047'))).toEqual(['logger {}']); // bucket 11 < 100
    expect(summary(resolve(f, {}, 'pi-0042'))).toEqual([]); // bucket 8837
  });

  it('includes every device at 100 and none at 0', () => {
    const all = fleet([logger({})], [spec('c', {}, [app('logger')], { percent: 100 })]);
    const none = fleet([logger({})], [spec('c', {}, [app('logger')], { percent: 0 })]);
    for (const id of ['a', 'b', 'c', 'd']) {
      expect(summary(resolve(all, {}, id))).toEqual(['logger {}']);
      expect(summary(resolve(none, {}, id))).toEqual([]);
    }
  });

  it('puts about percent of devices in the rollout', () => {
    let inside = 0;
    const f = fleet([logger({})], [spec('c', {}, [app('logger')], { percent: 25 })]);
    const index = indexFleet(f);
    for (let i = 0; i < 4000; i++) {
      const state = resolveDesiredState(index, device(`d-${i}`));
      if (state.ok && state.packets.length > 0) inside++;
    }
    expect(inside / 4000).toBeGreaterThan(0.22);
    expect(inside / 4000).toBeLessThan(0.28);
  });
});

describe('rule 3: joining apps', () => {
  const packets = [logger({ version: '1.0.0' }), logger({ version: '2.0.0' })];

  it('lets the highest priority win when specs ask for the same app', () => {
    const f = fleet(packets, [
      spec('base', {}, [app('logger', { version: '1.0.0' })]),
      spec('canary', {}, [app('logger', { version: '2.0.0' })], { priority: 10 }),
    ]);
    expect(summary(resolve(f, {}))).toEqual(['logger {version=2.0.0}']);
  });

  it('ignores a failing request of lower priority', () => {
    const f = fleet(packets, [
      spec('old', {}, [app('logger', { version: '9.9.9' })], { priority: -1 }),
      spec('base', {}, [app('logger', { version: '1.0.0' })]),
    ]);
    expect(summary(resolve(f, {}))).toEqual(['logger {version=1.0.0}']);
  });

  it('collapses equal-priority requests that resolve to the same packet', () => {
    const f = fleet(packets, [
      spec('a', {}, [app('logger', { version: '1.0.0' })]),
      spec('b', {}, [app('logger', {}, '^1')]),
    ]);
    const state = resolve(f, {});
    expect(summary(state)).toEqual(['logger {version=1.0.0}']);
    expect(state.ok && state.packets[0]?.specs).toEqual(['a', 'b']);
  });

  it('reports conflicting_app when equal-priority specs ask for different packets', () => {
    const f = fleet(packets, [
      spec('a', {}, [app('logger', { version: '1.0.0' })]),
      spec('b', {}, [app('logger', { version: '2.0.0' })]),
    ]);
    const state = resolve(f, {});
    expect(summary(state)).toEqual(['error conflicting_app']);
    expect(!state.ok && state.errors[0]?.message).toMatch(/spec a.*spec b/);
  });

  it('reports conflicting_app when one spec asks for the same app twice, differently', () => {
    const f = fleet(packets, [
      spec('a', {}, [app('logger', { version: '1.0.0' }), app('logger', { version: '2.0.0' })]),
    ]);
    expect(summary(resolve(f, {}))).toEqual(['error conflicting_app']);
  });
});

describe('rule 4: selecting a packet', () => {
  it('prefers the packet with the most labels that are all in M', () => {
    const f = fleet(
      [
        logger({}),
        logger({ arch: 'arm64' }),
        logger({ arch: 'arm64', hw: 'v2' }),
        logger({ arch: 'amd64', hw: 'v2' }),
      ],
      [spec('s', {}, [app('logger')])],
    );
    expect(summary(resolve(f, { arch: 'arm64', hw: 'v2' }))).toEqual(['logger {arch=arm64,hw=v2}']);
    expect(summary(resolve(f, { arch: 'arm64' }))).toEqual(['logger {arch=arm64}']);
  });

  it('uses a packet with an empty labelset as the universal fallback', () => {
    const f = fleet([logger({}), logger({ arch: 'arm64' })], [spec('s', {}, [app('logger')])]);
    expect(summary(resolve(f, { arch: 'riscv64' }))).toEqual(['logger {}']);
    expect(summary(resolve(f, {}))).toEqual(['logger {}']);
  });

  it('lets the spec win over a device label on a shared key', () => {
    const f = fleet(
      [logger({ version: '1.0.0' }), logger({ version: '2.0.0' })],
      [spec('s', {}, [app('logger', { version: '1.0.0' })])],
    );
    // The device cannot talk itself into another version.
    expect(summary(resolve(f, { version: '2.0.0' }))).toEqual(['logger {version=1.0.0}']);
  });

  it('does not read an app without labels as "latest"', () => {
    const f = fleet(
      [logger({ version: '1.0.0' }), logger({ version: '2.0.0' })],
      [spec('s', {}, [app('logger')])],
    );
    const state = resolve(f, {});
    expect(summary(state)).toEqual(['error no_matching_packet']);
  });

  it('reports ambiguous_match on a tie at the top', () => {
    const f = fleet([logger({ arch: 'arm64' }), logger({ hw: 'v2' })], [spec('s', {}, [app('logger')])]);
    const state = resolve(f, { arch: 'arm64', hw: 'v2' });
    expect(summary(state)).toEqual(['error ambiguous_match']);
    expect(!state.ok && state.errors[0]?.message).toMatch(/arch: arm64.*hw: v2/);
  });

  it('ignores ties below the top', () => {
    const f = fleet(
      [logger({ arch: 'arm64' }), logger({ hw: 'v2' }), logger({ arch: 'arm64', hw: 'v2' })],
      [spec('s', {}, [app('logger')])],
    );
    expect(summary(resolve(f, { arch: 'arm64', hw: 'v2' }))).toEqual(['logger {arch=arm64,hw=v2}']);
  });

  it('keeps a packet lacking a pinned key as a candidate (generic fallback) and warns', () => {
    const f = fleet([logger({ arch: 'arm64' })], [spec('s', {}, [app('logger', { channel: 'stable' })])]);
    const state = resolve(f, { arch: 'arm64' });
    expect(summary(state)).toEqual(['logger {arch=arm64}']);
    expect(state.ok && state.warnings[0]).toMatch(/pins channel.*generic fallback/);
  });

  it('prefers a packet that has the pinned key over the fallback', () => {
    const f = fleet(
      [
        logger({ arch: 'arm64' }),
        logger({ arch: 'arm64', channel: 'stable' }),
        logger({ arch: 'arm64', channel: 'beta' }),
      ],
      [spec('s', {}, [app('logger', { channel: 'stable' })])],
    );
    const state = resolve(f, { arch: 'arm64' });
    expect(summary(state)).toEqual(['logger {arch=arm64,channel=stable}']);
    expect(state.ok && state.warnings).toEqual([]);
  });

  it('reports no_matching_packet when no packet fits, and when no packet has the name', () => {
    const f = fleet([logger({ arch: 'arm64' })], [spec('s', {}, [app('logger'), app('nothing')])]);
    expect(summary(resolve(f, { arch: 'amd64' }))).toEqual([
      'error no_matching_packet',
      'error no_matching_packet',
    ]);
  });

  it('picks the highest version satisfying a range, then the most labels', () => {
    const f = fleet(
      [
        logger({ version: '1.2.0' }),
        logger({ version: '1.3.0' }),
        logger({ version: '1.3.0', arch: 'arm64' }),
        logger({ version: '2.0.0', arch: 'arm64' }),
        logger({ version: '1.4.0', arch: 'amd64' }),
      ],
      [spec('s', {}, [app('logger', {}, '^1.2.0')])],
    );
    expect(summary(resolve(f, { arch: 'arm64' }))).toEqual(['logger {arch=arm64,version=1.3.0}']);
    expect(summary(resolve(f, { arch: 'amd64' }))).toEqual(['logger {arch=amd64,version=1.4.0}']);
  });

  it('ignores the version in M when a range is given', () => {
    const f = fleet(
      [logger({ version: '1.2.0' }), logger({ version: '1.5.0' })],
      [spec('s', {}, [app('logger', {}, '^1')])],
    );
    expect(summary(resolve(f, { version: '1.2.0' }))).toEqual(['logger {version=1.5.0}']);
  });

  it('skips prereleases and non-semver versions for a range', () => {
    const f = fleet(
      [logger({ version: '1.2.0' }), logger({ version: '1.9.0-rc.1' }), logger({ version: '1.10' })],
      [spec('s', {}, [app('logger', {}, '^1')])],
    );
    expect(summary(resolve(f, {}))).toEqual(['logger {version=1.2.0}']);
  });

  it('reports ambiguous_match on the same version with the same number of labels', () => {
    const f = fleet(
      [logger({ version: '1.2.0', arch: 'arm64' }), logger({ version: '1.2.0', hw: 'v2' })],
      [spec('s', {}, [app('logger', {}, '^1')])],
    );
    expect(summary(resolve(f, { arch: 'arm64', hw: 'v2' }))).toEqual(['error ambiguous_match']);
  });

  it('reports no_matching_packet when no version satisfies the range', () => {
    const f = fleet([logger({ version: '1.2.0' })], [spec('s', {}, [app('logger', {}, '^2')])]);
    expect(summary(resolve(f, {}))).toEqual(['error no_matching_packet']);
  });
});

describe('rule 5: requires', () => {
  const runtime = (v: string, requires: ReturnType<typeof app>[] = []) =>
    packet('runtime', { version: v }, requires);

  it('adds required packets transitively, highest satisfying version', () => {
    const f = fleet(
      [
        packet('app', {}, [app('runtime', {}, '^2')]),
        runtime('2.0.0', [app('libc', {}, '>=1')]),
        runtime('2.4.0', [app('libc', {}, '>=1')]),
        runtime('3.0.0'),
        packet('libc', { version: '1.0.0' }),
      ],
      [spec('s', {}, [app('app')])],
    );
    const state = resolve(f, {});
    expect(summary(state)).toEqual(['app {}', 'libc {version=1.0.0}', 'runtime {version=2.4.0}']);
    expect(state.ok && state.packets.map((p) => [p.packet.name, p.requiredBy, p.dependsOn])).toEqual([
      ['app', [], ['runtime']],
      ['libc', ['runtime'], []],
      ['runtime', ['app'], ['libc']],
    ]);
  });

  it('resolves a requirement with the device labels', () => {
    const f = fleet(
      [
        packet('app', {}, [app('runtime')]),
        packet('runtime', { arch: 'arm64' }),
        packet('runtime', { arch: 'amd64' }),
      ],
      [spec('s', {}, [app('app')])],
    );
    expect(summary(resolve(f, { arch: 'amd64' }))).toEqual(['app {}', 'runtime {arch=amd64}']);
  });

  it('picks a packet satisfying every requirement on a name', () => {
    const f = fleet(
      [
        packet('a', {}, [app('runtime', {}, '^2')]),
        packet('b', {}, [app('runtime', {}, '~2.3')]),
        runtime('2.3.1'),
        runtime('2.5.0'),
      ],
      [spec('s', {}, [app('a'), app('b')])],
    );
    expect(summary(resolve(f, {}))).toEqual(['a {}', 'b {}', 'runtime {version=2.3.1}']);
  });

  it('accepts an app-chosen packet that satisfies the requirement', () => {
    const f = fleet(
      [packet('app', {}, [app('runtime', {}, '^2')]), runtime('2.3.0'), runtime('2.5.0')],
      [spec('s', {}, [app('app'), app('runtime', { version: '2.3.0' })])],
    );
    expect(summary(resolve(f, {}))).toEqual(['app {}', 'runtime {version=2.3.0}']);
  });

  it('reports conflicting_app when an app-chosen packet breaks a requirement', () => {
    const f = fleet(
      [packet('app', {}, [app('runtime', {}, '^2')]), runtime('2.5.0'), runtime('3.0.0')],
      [spec('s', {}, [app('app'), app('runtime', {}, '^3')])],
    );
    const state = resolve(f, {});
    expect(summary(state)).toEqual(['error conflicting_app']);
    expect(!state.ok && state.errors[0]?.message).toMatch(/requires runtime \^2/);
  });

  it('reports conflicting_app when two requirements on a name exclude each other', () => {
    const f = fleet(
      [
        packet('a', {}, [app('runtime', {}, '^2')]),
        packet('b', {}, [app('runtime', {}, '^3')]),
        runtime('2.5.0'),
        runtime('3.0.0'),
      ],
      [spec('s', {}, [app('a'), app('b')])],
    );
    expect(summary(resolve(f, {}))).toEqual(['error conflicting_app']);
  });

  it('reports no_matching_packet for a requirement nothing provides', () => {
    const f = fleet([packet('app', {}, [app('missing')])], [spec('s', {}, [app('app')])]);
    expect(summary(resolve(f, {}))).toEqual(['error no_matching_packet']);
  });

  it('reports dependency_cycle for a cycle, and for a packet requiring itself', () => {
    const cycle = fleet(
      [packet('a', {}, [app('b')]), packet('b', {}, [app('c')]), packet('c', {}, [app('a')])],
      [spec('s', {}, [app('a')])],
    );
    const state = resolve(cycle, {});
    expect(summary(state)).toEqual(['error dependency_cycle']);
    expect(!state.ok && state.errors[0]?.message).toBe('requires form a cycle: a → b → c → a');
    const self = fleet([packet('a', {}, [app('a')])], [spec('s', {}, [app('a')])]);
    expect(summary(resolve(self, {}))).toEqual(['error dependency_cycle']);
  });

  it('handles a long chain within the closure cap', () => {
    const chain = Array.from({ length: 200 }, (_, i) =>
      packet(`p${i}`, {}, i < 199 ? [app(`p${i + 1}`)] : []),
    );
    const state = resolve(fleet(chain, [spec('s', {}, [app('p0')])]), {});
    expect(state.ok && state.packets.length).toBe(200);
  });

  it('fails loudly when the closure does not settle within the cap', () => {
    const chain = Array.from({ length: 300 }, (_, i) =>
      packet(`p${i}`, {}, i < 299 ? [app(`p${i + 1}`)] : []),
    );
    const state = resolve(fleet(chain, [spec('s', {}, [app('p0')])]), {});
    expect(summary(state)).toEqual(['error dependency_cycle']);
    expect(!state.ok && state.errors[0]?.message).toMatch(/did not settle after 256 rounds/);
  });
});

describe('rule 5: requires that never settle', () => {
  it('stops at the first repeated choice and names the packets involved', () => {
    // a@2 needs b; b needs a ^1; so choosing a@2 brings b, which forces a@1, which drops b, ...
    const f = fleet(
      [
        packet('a', { version: '1.0.0' }),
        packet('a', { version: '2.0.0' }, [app('b', {}, '*')]),
        packet('b', { version: '1.0.0' }, [app('a', {}, '^1')]),
        packet('e', { version: '1.0.0' }, [app('a', {}, '*')]),
      ],
      [spec('s', {}, [app('e', {}, '*')])],
    );
    const state = resolve(f, {});
    expect(summary(state)).toEqual(['error dependency_cycle']);
    expect(!state.ok && state.errors[0]?.message).toMatch(/keep changing their choices of a/);
  });
});

describe('rule 6: fail closed', () => {
  it('fails the whole device when one app cannot be resolved', () => {
    const f = fleet(
      [logger({}), packet('vpn', { arch: 'arm64' })],
      [spec('s', {}, [app('logger'), app('vpn')])],
    );
    const state = resolve(f, { arch: 'amd64' });
    expect(state.ok).toBe(false);
    expect(!state.ok && state.errors.map((e) => [e.code, e.app])).toEqual([['no_matching_packet', 'vpn']]);
  });

  it('reports every unresolvable app, sorted by app name', () => {
    const f = fleet([], [spec('s', {}, [app('zeta'), app('alpha')])]);
    const state = resolve(f, {});
    expect(!state.ok && state.errors.map((e) => e.app)).toEqual(['alpha', 'zeta']);
  });
});
