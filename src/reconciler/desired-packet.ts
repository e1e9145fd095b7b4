import type { Packet } from '../schema/fleet.js';
import { formatLabels } from '../schema/labels.js';

/**
 * One packet of a device's desired state, with why it is there. Shared between devices that have it for
 * the same reasons: treat as immutable.
 */
export interface DesiredPacket {
  readonly packet: Packet;
  /** Ids of the specs that ask for it (sorted). */
  readonly specs: readonly string[];
  /** Names of desired packets that require it (sorted). */
  readonly requiredBy: readonly string[];
  /** Names of the packets it requires (sorted). */
  readonly dependsOn: readonly string[];
}

/** The empty list desired packets share. */
export const none: readonly string[] = Object.freeze([]);

/** The names a packet requires, sorted, each once (`DesiredPacket.dependsOn`). */
export function dependsOn(packet: Packet): readonly string[] {
  return packet.requires.length === 0 ? none : [...new Set(packet.requires.map((r) => r.name))].sort();
}

const descriptions = new WeakMap<Packet, string>();

/** `name {labels}`, for messages; made once per packet. */
export function describe(packet: Packet): string {
  let description = descriptions.get(packet);
  if (description === undefined) {
    description = `${packet.name} ${formatLabels(packet.labels)}`;
    descriptions.set(packet, description);
  }
  return description;
}
