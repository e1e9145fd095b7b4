import { randomBytes } from 'node:crypto';
import { readlink, rename, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { packetNamePattern } from '../schema/packet-name.js';
import { syncPath } from './write-file-atomic.js';

/** The slot folder name for an artifact: its sha256's first 16 hex digits. */
export function slotName(sha256: string): string {
  return sha256.slice(0, 16);
}

/**
 * The installed layout (a contract): `<root>/<name>/slots/<sha256 prefix>/` per slot, `<root>/<name>/current`
 * a symbolic link to the active slot (`slots/<prefix>`), `<root>/<name>/data/` kept across upgrades.
 */
export function packetPaths(root: string, name: string) {
  // Names are schema-checked already; checked again because here they become paths.
  if (!packetNamePattern.test(name)) throw new Error(`not a packet name: ${JSON.stringify(name)}`);
  const dir = join(root, name);
  return {
    dir,
    slots: join(dir, 'slots'),
    current: join(dir, 'current'),
    data: join(dir, 'data'),
    slot: (slot: string) => join(dir, 'slots', slot),
  };
}

/** The slot `current` points at, or undefined when there is none. */
export async function currentSlot(root: string, name: string): Promise<string | undefined> {
  const target = await readlink(packetPaths(root, name).current).catch(() => undefined);
  const match = target === undefined ? null : /^slots\/([0-9a-f]{16})$/.exec(target);
  return match?.[1];
}

/** Points `current` at `slot` atomically: a new link under a temp name renamed over the old one. */
export async function switchCurrent(root: string, name: string, slot: string): Promise<void> {
  const paths = packetPaths(root, name);
  const temp = `${paths.current}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await symlink(`slots/${slot}`, temp);
    await rename(temp, paths.current);
    await syncPath(paths.dir);
  } finally {
    await rm(temp, { force: true });
  }
}
