import type { Device, Fleet } from '../schema/fleet.js';
import { indexFleet } from './index-fleet.js';
import { resolveDesiredState, type DesiredState } from './resolve-desired-state.js';

/**
 * The desired state of many devices at once (what `diff` and `validate` use): the fleet is indexed once
 * and selections are shared between devices whose relevant labels agree. Results are in input order.
 */
export function resolveFleet(fleet: Fleet, devices: readonly Device[]): DesiredState[] {
  const index = indexFleet(fleet);
  return devices.map((device) => resolveDesiredState(index, device));
}
