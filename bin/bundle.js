#!/usr/bin/env node
// Builds dist/: every command of src/cli/commands bundled with what it imports (code shared between
// commands in dist/chunks/), @oclif/core left outside. A device agent then starts by loading a handful of
// files instead of hundreds of modules: the start-up of `agent run` is most of a no-change pass.
import { readdir, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const commands = (await readdir(`${root}src/cli/commands`, { recursive: true }))
  .filter((file) => file.endsWith('.ts'))
  .map((file) => `${root}src/cli/commands/${file}`);

await rm(`${root}dist`, { recursive: true, force: true });
await build({
  entryPoints: commands,
  outdir: `${root}dist`,
  outbase: `${root}src`,
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['@oclif/core'],
  // Bundled CommonJS dependencies (ajv, isomorphic-git) call require() for Node's own modules.
  banner: {
    js: "import { createRequire as gitfleetRequire } from 'node:module'; const require = gitfleetRequire(import.meta.url);",
  },
  logLevel: 'warning',
});
