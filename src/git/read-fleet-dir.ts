import { readdir } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { isFleetPath } from '../schema/parse-fleet.js';
import type { SourceFile } from '../schema/parse-yaml-documents.js';
import { readBounded } from './read-bounded.js';

/**
 * Reads the fleet files of a working tree: `fleet.yaml` and the YAML files under `packets/`, `specs/` and
 * `devices/`. Symbolic links and other non-regular files are not followed. Paths are repository-relative
 * with `/` separators.
 */
export async function readFleetDir(dir: string): Promise<SourceFile[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const files: SourceFile[] = [];
  for (const entry of entries) {
    if (!entry.isFile()) continue;
    const full = join(entry.parentPath, entry.name);
    const path = relative(dir, full).split(sep).join('/');
    if (isFleetPath(path)) files.push({ path, data: await readBounded(full) });
  }
  return files;
}
