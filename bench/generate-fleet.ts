import type { App, Device, Fleet, Packet, Spec } from '../src/schema/fleet.js';
import { labelsKey, makeLabels } from '../src/schema/labels.js';

/**
 * A synthetic fleet for the resolver benchmark and the reference oracle test, built directly as domain
 * objects from a seeded PRNG: the same seed always gives the same fleet.
 *
 * Shape (defaults): 100,000 devices labelled fleet/site/arch/hw/id; 2,000 specs targeting one or two of
 * fleet/site/arch/hw (about 10% of target values are globs); 500 packet names × 40 variants over
 * version/arch/channel/hw. Most apps resolve, but a few requests are made to fail on purpose so that
 * both outcomes are exercised:
 * - ambiguous_match: for a few names the hw-specific variant has no `channel`, so on those hw values it
 *   ties with the stable-channel variant of the same version for apps pinning `channel: stable`;
 * - no_matching_packet: a few names have no riscv64 packets, and a few app requests ask for a version
 *   only the beta channel has without pinning `channel: beta`;
 * - conflicting_app: a few app requests deviate from their name's usual labels/version at priority 0;
 *   some packets require a version of another name that an explicitly chosen packet does not satisfy;
 * - dependency_cycle: two names whose versioned packets require each other.
 */
export interface FleetSizes {
  devices: number;
  specs: number;
  /** Rounded to a multiple of the 40 variants per name, unless `names` is given (then names × 40). */
  packets: number;
  names?: number;
}

export const defaultSizes: FleetSizes = { devices: 100_000, specs: 2_000, packets: 20_000 };

export const VARIANTS_PER_NAME = 40;

export const archs = ['amd64', 'arm64', 'armv7l', 'riscv64'] as const;
const archWeights = [0.4, 0.3, 0.2, 0.1];
const regions = [
  'eu-west',
  'eu-central',
  'eu-north',
  'us-east',
  'us-west',
  'us-central',
  'ap-south',
  'ap-northeast',
  'sa-east',
  'af-south',
];
export const sites = regions.flatMap((r) => Array.from({ length: 20 }, (_, i) => `${r}-${i + 1}`));
export const fleets = Array.from({ length: 50 }, (_, i) => `fleet-${String(i).padStart(2, '0')}`);
export const hws = Array.from({ length: 20 }, (_, i) => `hw-${String(i + 1).padStart(2, '0')}`);

/**
 * Glob target values per key, so that patterns such as `eu-*` make sense against the generated values.
 * Negations match most of the fleet, so they only come as the second key of a target.
 */
const globs: Record<string, string[]> = {
  fleet: ['fleet-0[0-4]', 'fleet-{10,11,12}', 'fleet-4[5-9]'],
  site: ['eu-west-*', 'us-east-1?', 'ap-south-[1-5]', '{sa,af}-*-1', '*-north-1?'],
  arch: ['arm*', '{amd64,arm64}'],
  hw: ['hw-0[1-3]', 'hw-{05,06}', 'hw-1[0-2]'],
};
const negatedGlobs: Record<string, string[]> = {
  fleet: ['!fleet-0*'],
  site: ['!us-*', '!eu-*'],
  arch: ['!amd64', '!riscv64'],
  hw: ['!hw-2*', '!hw-0?'],
};

/** mulberry32: a tiny 32-bit PRNG, good enough for synthetic data and fully deterministic. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Rng {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed);
  }
  float(): number {
    return this.next();
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    const item = items[this.int(items.length)];
    if (item === undefined) throw new Error('pick from an empty list');
    return item;
  }
  weighted<T>(items: readonly T[], weights: readonly number[]): T {
    let r = this.next() * weights.reduce((a, b) => a + b, 0);
    for (let i = 0; i < items.length; i++) {
      r -= weights[i] ?? 0;
      if (r < 0) return items[i] as T;
    }
    return items[items.length - 1] as T;
  }
  hex(length: number): string {
    let out = '';
    for (let i = 0; i < length; i++) out += '0123456789abcdef'[this.int(16)];
    return out;
  }
}

interface NameShape {
  name: string;
  major: number;
  /** v1 < v2 < v3 are stable, v4 is only on the beta channel. */
  versions: [string, string, string, string];
  hw: [string, string];
  /** The hw variants lack `channel`: they tie with the stable variant for stable-pinned apps. */
  ambiguousHw: boolean;
  noRiscv: boolean;
}

interface AppConfig {
  version?: string;
  channel?: 'stable' | 'beta';
}

function nameOf(i: number, names: number): string {
  return `app-${String(i).padStart(Math.max(3, String(names - 1).length), '0')}`;
}

function shapeName(rng: Rng, name: string, forced: { ambiguousHw: boolean; noRiscv: boolean }): NameShape {
  const major = 1 + rng.int(3);
  const a = rng.int(5);
  const versions: [string, string, string, string] = [
    `${major}.${a}.${rng.int(10)}`,
    `${major}.${a + 1}.0`,
    `${major + 1}.0.${rng.int(10)}`,
    `${major + 1}.1.0`,
  ];
  const h1 = rng.int(hws.length);
  const h2 = (h1 + 1 + rng.int(hws.length - 1)) % hws.length;
  return {
    name,
    major,
    versions,
    hw: [hws[h1] as string, hws[h2] as string],
    ambiguousHw: rng.chance(0.01) || forced.ambiguousHw,
    noRiscv: rng.chance(0.004) || forced.noRiscv,
  };
}

/** The 40 variant labelsets of one name (see the module comment). */
function variantLabels(shape: NameShape): [string, string][][] {
  const [v1, v2, v3, v4] = shape.versions;
  const out: [string, string][][] = [];
  const extraHw = hws.filter((h) => !shape.hw.includes(h));
  for (const arch of archs) {
    if (arch === 'riscv64' && shape.noRiscv) {
      // Same count, but riscv64 devices find nothing of this name.
      for (let i = 0; i < 10; i++) {
        out.push([
          ['version', v1],
          ['arch', 'amd64'],
          ['hw', extraHw[i] as string],
        ]);
      }
      continue;
    }
    for (const v of [v1, v2, v3]) {
      out.push([
        ['version', v],
        ['arch', arch],
      ]);
    }
    out.push([
      ['version', v4],
      ['arch', arch],
      ['channel', 'beta'],
    ]);
    out.push([
      ['version', v3],
      ['arch', arch],
      ['channel', 'stable'],
    ]);
    out.push([
      ['version', v2],
      ['arch', arch],
      ['channel', 'stable'],
    ]);
    out.push([['arch', arch]]);
    out.push([
      ['arch', arch],
      ['channel', 'beta'],
    ]);
    for (const hw of shape.hw) {
      out.push(
        shape.ambiguousHw
          ? [
              ['version', v3],
              ['arch', arch],
              ['hw', hw],
            ]
          : [
              ['version', v3],
              ['arch', arch],
              ['channel', 'stable'],
              ['hw', hw],
            ],
      );
    }
  }
  return out;
}

/** A version range an app of this name asks for; all of them select a stable version on most devices. */
function usualRange(rng: Rng, shape: NameShape): string {
  const [v1, v2] = shape.versions;
  const m = shape.major;
  return rng.pick([`^${m}.0.0`, `>=${m}.0.0 <${m + 2}`, `^${m + 1}.0.0`, `~${v1}`, `>=${v2}`]);
}

function usualConfig(rng: Rng, shape: NameShape): AppConfig {
  // Stable v3 and the hw-specific v3 tie for these on the name's two hw values.
  if (shape.ambiguousHw) return { version: `>=${shape.major}.0.0 <${shape.major + 2}`, channel: 'stable' };
  const config: AppConfig = {};
  if (rng.chance(0.7)) config.version = usualRange(rng, shape);
  const c = rng.float();
  if (c < 0.3) config.channel = 'stable';
  else if (c < 0.4) config.channel = 'beta';
  return config;
}

/** A deviating request: another channel or range, sometimes one no stable packet satisfies. */
function deviantConfig(rng: Rng, shape: NameShape, usual: AppConfig): AppConfig {
  const config: AppConfig = { ...usual };
  const r = rng.float();
  if (r < 0.4) config.channel = usual.channel === 'beta' ? 'stable' : 'beta';
  else if (r < 0.8) config.version = usualRange(rng, shape);
  else {
    // Only the beta channel has this version: no_matching_packet unless the app pins beta.
    config.version = `>=${shape.versions[3]}`;
    delete config.channel;
  }
  return config;
}

function makeApp(name: string, config: AppConfig): App {
  const app: App = {
    name,
    labels: makeLabels(config.channel ? [['channel', config.channel]] : []),
  };
  if (config.version !== undefined) app.version = config.version;
  return app;
}

export function generateFleet(
  seed: number,
  sizes: Partial<FleetSizes> = {},
): { fleet: Fleet; devices: Device[] } {
  const rng = new Rng(seed);
  const deviceCount = sizes.devices ?? defaultSizes.devices;
  const specCount = sizes.specs ?? defaultSizes.specs;
  const nameCount = Math.max(
    3,
    sizes.names ?? Math.round((sizes.packets ?? defaultSizes.packets) / VARIANTS_PER_NAME),
  );

  // Packet names and their 40 variants each; at least one name of each kind of trouble, however small
  // the fleet.
  const shapes = Array.from({ length: nameCount }, (_, i) =>
    shapeName(rng, nameOf(i, nameCount), {
      ambiguousHw: i === Math.floor(nameCount * 0.1),
      noRiscv: i === Math.floor(nameCount * 0.2),
    }),
  );
  const packets: Packet[] = [];
  // Two names of middling popularity require each other: a dependency cycle for devices that ask for them.
  const cycleA = shapes[Math.floor(nameCount * 0.6)] as NameShape;
  const cycleB = shapes[Math.floor(nameCount * 0.6) + 1] as NameShape;
  for (const shape of shapes) {
    variantLabels(shape).forEach((entries, i) => {
      const labels = makeLabels(entries);
      const version = labels.version ?? 'any';
      const arch = labels.arch ?? 'any';
      const requires: App[] = [];
      const partner = shape === cycleA ? cycleB : shape === cycleB ? cycleA : undefined;
      if (partner && labels.version !== undefined && labels.channel === undefined) {
        requires.push({ name: partner.name, labels: makeLabels(), version: '>=0.0.0' });
      } else if (rng.chance(0.02)) {
        const other = rng.pick(shapes.filter((s) => s !== shape));
        const range = rng.chance(0.8) ? `>=${other.major}.0.0` : `^${other.major}.0.0`;
        requires.push({ name: other.name, labels: makeLabels(), version: range });
      }
      packets.push({
        name: shape.name,
        labels,
        artifact: {
          url: `${shape.name}/${version}/${shape.name}-${arch}-${i}.tar.gz`,
          sha256: rng.hex(64),
          size: 10_000 + rng.int(50_000_000),
        },
        hooks: {},
        requires,
        location: { file: `packets/${shape.name}.yaml`, line: 1 + i * 12, col: 1 },
      });
    });
  }
  packets.sort((a, b) => compare(a.name, b.name) || compare(labelsKey(a.labels), labelsKey(b.labels)));

  // Specs: targets of one or two keys, a few globs, mostly priority 0, a few rollouts.
  const usual = shapes.map((shape) => usualConfig(rng, shape));
  const specs: Spec[] = [];
  const pad = Math.max(4, String(specCount - 1).length);
  const targetKeys = ['fleet', 'site', 'hw', 'arch'];
  const valuesOf: Record<string, readonly string[]> = { fleet: fleets, site: sites, arch: archs, hw: hws };
  for (let s = 0; s < specCount; s++) {
    const id = `spec-${String(s).padStart(pad, '0')}`;
    const keys = [rng.weighted(targetKeys, [0.5, 0.35, 0.1, 0.05])];
    // Arch alone would target a quarter of the fleet: it only comes as a second key.
    if (keys[0] === 'arch' || rng.chance(0.75)) {
      const rest = targetKeys.filter((k) => k !== keys[0]);
      keys.push(
        rng.weighted(
          rest,
          rest.map((k) => (k === 'arch' ? 0.4 : 0.2)),
        ),
      );
    }
    const target = makeLabels(
      keys.map((k, i) => {
        if (!rng.chance(0.1)) return [k, rng.pick(valuesOf[k] ?? [])] as const;
        return [k, rng.pick(i > 0 && rng.chance(0.3) ? (negatedGlobs[k] ?? []) : (globs[k] ?? []))] as const;
      }),
    );
    const priority = rng.chance(0.85) ? 0 : 1 + rng.int(10);
    const appCount = rng.weighted([1, 2, 3, 4, 5], [0.35, 0.3, 0.2, 0.1, 0.05]);
    const apps: App[] = [];
    for (let a = 0; a < appCount; a++) {
      // Popular names are asked for more often (and so by several specs per device).
      const n = Math.floor(nameCount * rng.float() ** 1.5);
      const shape = shapes[n] as NameShape;
      const config = rng.chance(0.01) ? deviantConfig(rng, shape, usual[n] ?? {}) : (usual[n] ?? {});
      apps.push(makeApp(shape.name, config));
    }
    const spec: Spec = {
      id,
      target,
      priority,
      apps,
      location: { file: `specs/${id}.yaml`, line: 1, col: 1 },
    };
    if (rng.chance(0.05)) spec.rollout = { percent: rng.pick([1, 5, 10, 25, 33.3, 50, 75, 90]) };
    specs.push(spec);
  }

  const devices: Device[] = [];
  const dpad = Math.max(6, String(deviceCount - 1).length);
  for (let d = 0; d < deviceCount; d++) {
    const id = `dev-${String(d).padStart(dpad, '0')}`;
    devices.push({
      id,
      labels: makeLabels([
        ['fleet', rng.pick(fleets)],
        ['site', rng.pick(sites)],
        ['arch', rng.weighted(archs, archWeights)],
        ['hw', rng.pick(hws)],
        ['id', id],
      ]),
    });
  }

  const fleet: Fleet = {
    settings: {
      version: 1,
      artifacts: { mirrors: [] },
      guards: { allowEmpty: false },
      trust: { timestamp: false },
      location: { file: 'fleet.yaml', line: 1, col: 1 },
    },
    packets,
    specs,
    devices: [],
  };
  return { fleet, devices };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
