import type { Device, Fleet, InstalledPacket, Labels } from '../schema/fleet.js';
import { overlayLabels } from '../schema/labels.js';
import { indexFleet } from './index-fleet.js';
import { narrowFleet } from './narrow-fleet.js';
import { planActions, type Action } from './plan-actions.js';
import type { DesiredPacket } from './desired-packet.js';
import { resolveDesiredState, type ResolveError } from './resolve-desired-state.js';

export type DevicePlan =
  | {
      ok: true;
      device: Device;
      desired: readonly DesiredPacket[];
      actions: Action[];
      warnings: readonly string[];
    }
  | { ok: false; device: Device; errors: readonly ResolveError[] };

/**
 * The device as the fleet sees it: the given labels overlaid by its device record's labels (central
 * assignment beats local configuration), and whether an empty plan is allowed for it.
 */
export function identifyDevice(
  fleet: Fleet,
  id: string,
  labels: Labels,
): { device: Device; allowEmpty: boolean } {
  const record = fleet.devices.find((d) => d.id === id);
  return {
    device: { id, labels: record ? overlayLabels(labels, record.labels) : labels },
    allowEmpty: fleet.settings.guards.allowEmpty || (record?.allowEmpty ?? false),
  };
}

/** Resolves one device and plans the actions from what it has installed to its desired state. */
export function planDevice(
  fleet: Fleet,
  id: string,
  labels: Labels,
  installed: readonly InstalledPacket[],
): DevicePlan {
  const { device, allowEmpty } = identifyDevice(fleet, id, labels);
  const desired = resolveDesiredState(indexFleet(narrowFleet(fleet, device)), device);
  if (!desired.ok) return desired;
  const plan = planActions(desired.packets, installed, { allowEmpty });
  if (!plan.ok) return { ok: false, device, errors: [plan.error] };
  return { ok: true, device, desired: desired.packets, actions: plan.actions, warnings: desired.warnings };
}
