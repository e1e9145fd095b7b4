import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { projectRoot } from './run-cli.js';

/** Every file of fleet-example/ by repository path, to commit into test repositories. */
export function exampleFiles(): Record<string, string> {
  const root = join(projectRoot, 'fleet-example');
  const files: Record<string, string> = {};
  for (const entry of readdirSync(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const full = join(entry.parentPath, entry.name);
    files[relative(root, full)] = readFileSync(full, 'utf8');
  }
  return files;
}
