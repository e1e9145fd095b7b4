import type { Device, Fleet } from '../schema/fleet.js';
import { hashWords, sameWords } from './hash-words.js';
import { classKeyOf, classOf, indexFleet, matchSpecOrders } from './index-fleet.js';
import { resolveInClass, type DesiredState } from './resolve-desired-state.js';

/**
 * The desired state of many devices at once (what `diff` and `validate` use): the fleet is indexed once
 * and selections are shared between devices whose relevant labels agree. Results are in input order.
 */
export function resolveFleet(fleet: Fleet, devices: readonly Device[]): DesiredState[] {
  const index = indexFleet(fleet);
  // First, in input order (devices' labels are read in the order they were made): each device's class
  // and applying specs, the latter in one flat array.
  const byClass = new Map<number | string, number[]>();
  const starts = new Int32Array(devices.length + 1);
  const room = index.specs.length;
  let specs = new Int32Array(room + devices.length * Math.min(room, 16));
  let used = 0;
  for (let i = 0; i < devices.length; i++) {
    const device = devices[i] as Device;
    const key = classKeyOf(index, device.labels);
    const members = byClass.get(key);
    if (members) members.push(i);
    else byClass.set(key, [i]);
    if (used + room > specs.length) {
      const grown = new Int32Array(Math.max(specs.length * 2, used + room));
      grown.set(specs.subarray(0, used));
      specs = grown;
    }
    used += matchSpecOrders(index, device, specs, used);
    starts[i + 1] = used;
  }
  // Then class by class, which keeps a class's tables in the CPU cache. The answers do not depend on the
  // order: the index only memoises.
  const states = new Array<DesiredState>(devices.length);
  // Devices of one class with the same applying specs have the same desired state: the first of them
  // (by the hash of its specs) is resolved, the others share its packets, warnings or errors.
  const resolved = new Map<number, number>();
  for (const members of byClass.values()) {
    // Made (or found) once per class; the index may forget it after, to bound its memory.
    const deviceClass = classOf(index, (devices[members[0] as number] as Device).labels);
    resolved.clear();
    for (const i of members) {
      const device = devices[i] as Device;
      const from = starts[i] as number;
      const to = starts[i + 1] as number;
      const hash = hashWords(specs, from, to);
      const first = resolved.get(hash);
      if (
        first !== undefined &&
        sameWords(specs, starts[first] as number, starts[first + 1] as number, specs, from, to)
      ) {
        states[i] = withDevice(states[first] as DesiredState, device);
        continue;
      }
      states[i] = resolveInClass(index, deviceClass, device, specs, from, to);
      if (first === undefined) resolved.set(hash, i);
    }
  }
  return states;
}

/** Another device's desired state, for this device. */
function withDevice(state: DesiredState, device: Device): DesiredState {
  return state.ok
    ? { ok: true, device, packets: state.packets, warnings: state.warnings }
    : { ok: false, device, errors: state.errors };
}
