import { isAbsolute, relative, sep } from 'node:path';

/** Whether `path` is `root` or below it (both absolute, links already resolved when that matters). */
export function isInside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
}

/** Whether `path` is strictly below `root`: inside it and not `root` itself. */
export function isBelow(root: string, path: string): boolean {
  return path !== root && isInside(root, path);
}
