import { randomBytes } from 'node:crypto';
import { open, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Fsyncs a file, or a directory so that a rename or unlink in it survives a power cut. */
export async function syncPath(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Writes `data` to `path` atomically and durably: a temp file in the same directory, fsynced, renamed over
 * `path`, then the directory fsynced. Readers see the old bytes or the new ones, never a mix, even after a
 * power cut.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const temp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(temp, data, { flag: 'wx', flush: true });
    await rename(temp, path);
    await syncPath(dirname(path));
  } finally {
    await rm(temp, { force: true });
  }
}
