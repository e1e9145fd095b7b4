import type { Device, Fleet, Packet, Spec } from '../schema/fleet.js';
import { isGlob, matchLabelValue } from './match-label-value.js';

function targets(spec: Spec, device: Device): boolean {
  return Object.entries(spec.target).every(([key, pattern]) => {
    if (!Object.hasOwn(device.labels, key)) return false;
    const value = device.labels[key] as string;
    return isGlob(pattern) ? matchLabelValue(pattern)(value) : value === pattern;
  });
}

/**
 * The part of a fleet one device's desired state can depend on: the specs whose target matches it
 * (rollout is left to the resolver) and the packets of every name those specs ask for, with their
 * requires followed transitively. Resolving the device against it gives exactly the result of resolving
 * it against the whole fleet, without indexing thousands of specs and packets it never sees.
 */
export function narrowFleet(fleet: Fleet, device: Device): Fleet {
  const specs = fleet.specs.filter((spec) => targets(spec, device));
  const byName = new Map<string, Packet[]>();
  for (const packet of fleet.packets) {
    const list = byName.get(packet.name);
    if (list) list.push(packet);
    else byName.set(packet.name, [packet]);
  }
  const names = new Set<string>();
  const pending = specs.flatMap((spec) => spec.apps.map((app) => app.name));
  for (let name = pending.pop(); name !== undefined; name = pending.pop()) {
    if (names.has(name)) continue;
    names.add(name);
    for (const packet of byName.get(name) ?? []) pending.push(...packet.requires.map((r) => r.name));
  }
  // fleet.packets is sorted; filtering keeps that order.
  return { ...fleet, specs, packets: fleet.packets.filter((p) => names.has(p.name)) };
}
