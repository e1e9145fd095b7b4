import type { Fleet } from '../schema/fleet.js';
import type { ParseResult } from '../schema/parse-fleet.js';
import { compareProblems, type Problem } from '../schema/problem.js';
import { identifyDevice } from './plan-device.js';
import { resolveFleet } from './resolve-fleet.js';

export interface ValidationReport {
  ok: boolean;
  errors: Problem[];
  warnings: Problem[];
  counts: { packets: number; specs: number; devices: number };
  fleet?: Fleet;
}

/**
 * Everything `gitfleet validate` checks: the files parse and match their schemas, packets are unique, and
 * every device record resolves (fail-closed errors are reported at the device record). Warnings (empty
 * targets, non-semver versions, generic fallbacks, apps no packet provides) do not make it fail.
 */
export function validateFleet(parsed: ParseResult<Fleet>): ValidationReport {
  if (!parsed.ok) {
    return {
      ok: false,
      errors: parsed.errors,
      warnings: parsed.warnings,
      counts: { packets: 0, specs: 0, devices: 0 },
    };
  }
  const fleet = parsed.value;
  const errors: Problem[] = [];
  const warnings = [...parsed.warnings];

  const provided = new Set(fleet.packets.map((p) => p.name));
  const askers = [
    ...fleet.specs.map((spec) => ({
      who: `spec ${spec.id} asks for`,
      apps: spec.apps,
      location: spec.location,
    })),
    ...fleet.packets.map((p) => ({
      who: `packet ${p.name} requires`,
      apps: p.requires,
      location: p.location,
    })),
  ];
  for (const { who, apps, location } of askers) {
    for (const app of apps.filter((a) => !provided.has(a.name))) {
      const message = `${who} ${app.name}, which no packet provides`;
      warnings.push({ severity: 'warning', code: 'no_matching_packet', message, location });
    }
  }
  const devices = fleet.devices.map((record) => identifyDevice(fleet, record.id, {}).device);
  resolveFleet(fleet, devices).forEach((state, i) => {
    const record = fleet.devices[i];
    if (!record) return;
    if (!state.ok) {
      for (const e of state.errors)
        errors.push({
          severity: 'error',
          code: e.code,
          message: `device ${record.id}: ${e.message}`,
          location: record.location,
        });
    } else {
      for (const w of state.warnings)
        warnings.push({
          severity: 'warning',
          code: 'no_matching_packet',
          message: `device ${record.id}: ${w}`,
          location: record.location,
        });
    }
  });
  return {
    ok: errors.length === 0,
    errors: errors.sort(compareProblems),
    warnings: warnings.sort(compareProblems),
    counts: { packets: fleet.packets.length, specs: fleet.specs.length, devices: fleet.devices.length },
    fleet,
  };
}
