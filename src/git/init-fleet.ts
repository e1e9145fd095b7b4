import { mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GitfleetError } from '../schema/gitfleet-error.js';
import { publishedSchemas } from '../schema/published-schemas.js';

const starter: Record<string, string> = {
  'fleet.yaml': `# yaml-language-server: $schema=schemas/fleet.schema.json
kind: Fleet
version: 1
artifacts:
  mirrors: []   # e.g. https://artifacts.example.org/fleet/ ; relative artifact URLs resolve against these
guards:
  allowEmpty: false
`,
  'specs/example.yaml': `# yaml-language-server: $schema=../schemas/spec.schema.json
kind: Spec
id: example
description: Add apps here; add packets with \`gitfleet packet add\` or by hand under packets/.
target: { fleet: example }
apps: []
`,
  'devices/example-0001.yaml': `# yaml-language-server: $schema=../schemas/device.schema.json
kind: Device
id: example-0001
labels: { fleet: example }
`,
  'packets/README.md': 'Packet manifests (kind: Packet), one or more YAML documents per file.\n',
};

/**
 * Writes a starter fleet repository into `dir` (created if missing): fleet.yaml, an example spec and
 * device record, and the JSON Schemas under schemas/ for editors. Refuses a directory that already has a
 * fleet.yaml; writes nothing else over existing files.
 */
export async function initFleet(dir: string): Promise<string[]> {
  if (await stat(join(dir, 'fleet.yaml')).catch(() => undefined)) {
    throw new GitfleetError('invalid_manifest', `${dir} already holds a fleet.yaml`);
  }
  const written: string[] = [];
  for (const [path, text] of Object.entries(starter)) {
    await mkdir(join(dir, path, '..'), { recursive: true });
    await writeFile(join(dir, path), text, { flag: 'wx' }).then(
      () => written.push(path),
      (error: NodeJS.ErrnoException) => {
        if (error.code !== 'EEXIST') throw error;
      },
    );
  }
  await mkdir(join(dir, 'schemas'), { recursive: true });
  for (const [name, schema] of Object.entries(publishedSchemas)) {
    await writeFile(join(dir, 'schemas', name), `${JSON.stringify(schema, null, 2)}\n`);
    written.push(`schemas/${name}`);
  }
  return written;
}
