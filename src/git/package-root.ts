import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

/**
 * The gitfleet checkout or package folder (the one holding package.json, bin/ and fleet-example/), found
 * from this module wherever the build put it: the bundled CLI and the compiled modules sit at different
 * depths.
 */
export function packageRoot(): string {
  if (root !== undefined) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find the gitfleet package folder');
    dir = parent;
  }
  root = dir;
  return root;
}
