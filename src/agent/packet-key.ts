import type { Labels } from '../schema/fleet.js';
import { labelsKey } from '../schema/labels.js';

/** The identity of one action on one exact packet (name, labels, artifact bytes): what bad marks remember. */
export function packetKey(
  action: 'install' | 'uninstall',
  name: string,
  labels: Labels,
  sha256: string,
): string {
  return `${action} ${name} ${labelsKey(labels)} ${sha256}`;
}
