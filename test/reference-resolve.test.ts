import { describe, expect, it } from 'vitest';
import { generateFleet } from '../bench/generate-fleet.js';
import { canonical, referenceResolve } from '../bench/reference-resolve.js';
import { resolveFleet } from '../src/reconciler/resolve-fleet.js';

const small = { devices: 300, specs: 150, packets: 1_000 };

describe('generated fleets', () => {
  it('are deterministic for a seed', () => {
    const a = generateFleet(2, small);
    const b = generateFleet(2, small);
    expect(JSON.stringify(b)).toBe(JSON.stringify(a));
    expect(JSON.stringify(generateFleet(3, small))).not.toBe(JSON.stringify(a));
    expect(a.devices).toHaveLength(300);
    expect(a.fleet.specs).toHaveLength(150);
    expect(a.fleet.packets).toHaveLength(1_000);
    expect(Object.getPrototypeOf(a.devices[0]?.labels)).toBeNull();
    expect(Object.getPrototypeOf(a.fleet.packets[0]?.labels)).toBeNull();
  });
});

describe('the engine against the reference implementation', () => {
  it('agrees on every device of a small generated fleet', () => {
    const { fleet, devices } = generateFleet(2, small);
    const states = resolveFleet(fleet, devices);
    const codes = new Set<string>();
    let ok = 0;
    devices.forEach((device, i) => {
      const engine = canonical(states[i]!);
      expect({ device: device.id, ...engine }).toEqual({
        device: device.id,
        ...referenceResolve(fleet, device),
      });
      if (engine.ok) ok++;
      else for (const code of engine.codes) codes.add(code);
    });
    // The fleet exercises both outcomes and every resolver error.
    expect(ok).toBeGreaterThan(devices.length / 2);
    expect(ok).toBeLessThan(devices.length);
    expect([...codes].sort()).toEqual([
      'ambiguous_match',
      'conflicting_app',
      'dependency_cycle',
      'no_matching_packet',
    ]);
  });
});
