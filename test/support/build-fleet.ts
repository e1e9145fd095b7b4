import type { App, Device, Fleet, Packet, Spec } from '../../src/schema/fleet.js';
import { makeLabels } from '../../src/schema/labels.js';

/** In-memory builders for core tests: short to write, complete enough for the resolver. */
const here = { file: 'test', line: 1, col: 1 };

export function labels(record: Record<string, string> = {}) {
  return makeLabels(Object.entries(record));
}

export function app(name: string, pinned: Record<string, string> = {}, version?: string): App {
  return { name, labels: labels(pinned), ...(version === undefined ? {} : { version }) };
}

export function packet(name: string, record: Record<string, string> = {}, requires: App[] = []): Packet {
  const id = `${name}-${Object.entries(record)
    .map(([k, v]) => `${k}=${v}`)
    .join(',')}`;
  let hash = 0;
  for (const c of id) hash = (hash * 31 + c.charCodeAt(0)) >>> 0;
  return {
    name,
    labels: labels(record),
    artifact: { url: `${name}.tar.gz`, sha256: hash.toString(16).padStart(64, '0'), size: 1000 },
    hooks: {},
    requires,
    location: here,
  };
}

export function spec(
  id: string,
  target: Record<string, string>,
  apps: App[],
  options: { priority?: number; percent?: number } = {},
): Spec {
  return {
    id,
    target: labels(target),
    priority: options.priority ?? 0,
    ...(options.percent === undefined ? {} : { rollout: { percent: options.percent } }),
    apps,
    location: here,
  };
}

export function fleet(packets: Packet[], specs: Spec[], allowEmpty = false): Fleet {
  return {
    settings: {
      version: 1,
      artifacts: { mirrors: [] },
      guards: { allowEmpty },
      trust: { timestamp: false },
      location: here,
    },
    packets,
    specs,
    devices: [],
  };
}

export function device(id: string, record: Record<string, string> = {}): Device {
  return { id, labels: labels(record) };
}
