import { describe, it, expect, afterAll } from 'vitest';
import { mulberry32 } from '../bench/generate-fleet.js';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { readFleetDir } from '../src/git/read-fleet-dir.js';
import { parseFleet } from '../src/schema/parse-fleet.js';
import { parseInstalled } from '../src/schema/parse-installed.js';
import { parseLabelArgs } from '../src/schema/parse-label-args.js';
import { parseYamlDocuments, yamlLimits, type SourceFile } from '../src/schema/parse-yaml-documents.js';
import type { Problem } from '../src/schema/problem.js';

/**
 * Hostile input: every case must come back as typed `invalid_manifest` problems with a location, never
 * as an exception, and must finish (vitest's timeout catches hangs; there are no timing assertions).
 */

const SHA = '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08';
const FLEET_FILE: SourceFile = { path: 'fleet.yaml', data: 'kind: Fleet\n' };
const MB = 1024 * 1024;

function randomBytes(seed: number, length: number): Uint8Array {
  const next = mulberry32(seed);
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = Math.floor(next() * 256);
  return bytes;
}

/** Every problem is a located invalid_manifest error in `file`, with 1-based integer line and col. */
function expectLocatedProblems(problems: readonly Problem[], file: string): void {
  expect(problems.length).toBeGreaterThan(0);
  for (const p of problems) {
    expect(p.severity).toBe('error');
    expect(p.code).toBe('invalid_manifest');
    expect(p.location?.file).toBe(file);
    expect(Number.isInteger(p.location?.line) && p.location!.line >= 1).toBe(true);
    expect(Number.isInteger(p.location?.col) && p.location!.col >= 1).toBe(true);
  }
}

/** Parses one hostile file both on its own and as part of a fleet; returns the fleet errors. */
function hostile(path: string, data: string | Uint8Array): Problem[] {
  const direct = parseYamlDocuments({ path, data });
  const result = parseFleet([FLEET_FILE, { path, data }]);
  expect(result.ok).toBe(false);
  const errors = result.ok ? [] : result.errors;
  expectLocatedProblems(errors, path);
  if (direct.problems.length > 0) expectLocatedProblems(direct.problems, path);
  return errors;
}

function messages(problems: readonly Problem[]): string {
  return problems.map((p) => p.message).join('\n');
}

/** `a: &a [lol x9]`, then 8 more levels of 9 aliases each: 9^9 (387 million) nodes once expanded. */
function billionLaughs(): string {
  const lines = [`a0: &a0 [${Array(9).fill('"lol"').join(', ')}]`];
  for (let i = 1; i < 9; i++)
    lines.push(
      `a${i}: &a${i} [${Array(9)
        .fill(`*a${i - 1}`)
        .join(', ')}]`,
    );
  lines.push(`kind: Packet`, `name: bomb`, `labels: { boom: *a8 }`);
  return `${lines.join('\n')}\n`;
}

describe('alias bombs and aliases', () => {
  it('refuses a billion-laughs alias bomb (9 levels of 9 aliases) with a problem about the node limit', () => {
    const errors = hostile('packets/bomb.yaml', billionLaughs());
    expect(errors).toHaveLength(1);
    // Located where the budget ran out (inside the anchors of lines 1-9); hostile() checks line and col.
    expect(errors[0]!.location?.file).toBe('packets/bomb.yaml');
    expect(errors[0]!.location?.line).toBeLessThanOrEqual(9);
    expect(errors[0]!.message).toMatch(/nodes/);
    expect(errors[0]!.message).toContain(String(yamlLimits.maxNodes));
  });

  it('refuses a bomb hidden in a spec the same way', () => {
    const text = billionLaughs().replace(
      'kind: Packet\nname: bomb\nlabels: { boom: *a8 }',
      'kind: Spec\nid: s\ntarget: *a8',
    );
    expect(messages(hostile('specs/bomb.yaml', text))).toMatch(/nodes/);
  });

  it('refuses a self-referencing alias instead of looping', () => {
    expect(messages(hostile('packets/loop.yaml', 'kind: Packet\nname: x\nlabels: &l { a: *l }\n'))).toMatch(
      /nested|alias/,
    );
    expect(hostile('packets/loop2.yaml', 'a: &a [*a]\n').length).toBeGreaterThan(0);
  });

  it('refuses an alias to an anchor that does not exist (or comes later)', () => {
    expect(messages(hostile('packets/x.yaml', 'kind: Packet\nname: *nope\n'))).toMatch(/alias/);
    expect(messages(hostile('packets/y.yaml', 'kind: Packet\nname: *n\nlabels: &n {}\n'))).toMatch(/alias/);
  });

  it('parses a document with 24,000 aliases of one anchor', () => {
    const n = 24_000;
    const text = `a: &a x\nb: [${Array(n).fill('y').join(',')}]\nc: [${Array(n).fill('*a').join(',')}]\n`;
    const { documents, problems } = parseYamlDocuments({ path: 'packets/aliases.yaml', data: text });
    expect(problems).toEqual([]);
    const value = documents[0]!.value as { c: string[] };
    expect(value.c).toHaveLength(n);
    expect(value.c[n - 1]).toBe('x');
  });

  it('accepts a small anchor reused once, with the same value in both places', () => {
    const spec = [
      'kind: Spec',
      'id: s',
      'target: { fleet: alpha }',
      'apps:',
      '  - name: logger',
      '    labels: &stable { channel: stable, tier: "1.10" }',
      '  - name: runtime',
      '    labels: *stable',
      '',
    ].join('\n');
    const result = parseFleet([FLEET_FILE, { path: 'specs/s.yaml', data: spec }]);
    if (!result.ok) throw new Error(JSON.stringify(result.errors));
    const [logger, runtime] = result.value.specs[0]!.apps;
    expect({ ...logger!.labels }).toEqual({ channel: 'stable', tier: '1.10' });
    expect({ ...runtime!.labels }).toEqual({ channel: 'stable', tier: '1.10' });
  });

  it('refuses a file whose documents together expand to more than maxNodes nodes', () => {
    const doc = [
      `a: &a [${Array(10).fill('x').join(',')}]`,
      `b: &b [${Array(10).fill('*a').join(',')}]`,
      `c: &c [${Array(10).fill('*b').join(',')}]`,
      `d: &d [${Array(10).fill('*c').join(',')}]`,
      `e: [${Array(5).fill('*d').join(',')}]`,
      '',
    ].join('\n');
    const one = parseYamlDocuments({ path: 'packets/many.yaml', data: doc });
    expect(one.problems).toEqual([]); // one document is under the limit
    const many = parseYamlDocuments({ path: 'packets/many.yaml', data: Array(10).fill(doc).join('---\n') });
    expectLocatedProblems(many.problems, 'packets/many.yaml');
  });
});

describe('alias amplification of long keys (in a child process, so a crash cannot take vitest down)', () => {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const dirs: string[] = [];
  afterAll(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  // Regression (found by this test): positions used to be indexed by JSON-pointer strings, one per
  // converted node, and alias expansion converted the aliased subtree again under new pointers. A 3 MB
  // file whose anchor is a map with one 3 MB key, used 1,000 times through 3 levels of 10 aliases
  // (1,111 nodes, far below maxNodes), made 1,000 distinct 3 MB pointer strings that the Map flattened
  // and compared (V8 gives strings longer than 16,383 characters one hash, so they all collided): the
  // process died with "JavaScript heap out of memory" (exit 134) instead of returning a problem.
  it('returns a problem for a 3 MB key aliased 1,000 times instead of running out of memory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gitfleet-hostile-'));
    dirs.push(dir);
    const script = join(dir, 'long-key.mts');
    const parser = pathToFileURL(join(root, 'src', 'schema', 'parse-fleet.ts')).href;
    await writeFile(
      script,
      [
        `import { parseFleet } from ${JSON.stringify(parser)};`,
        "const key = 'k'.repeat(3 * 1024 * 1024);",
        'const text = [',
        '  `a0: &a0 { ${key}: x }`,',
        "  `a1: &a1 [${Array(10).fill('*a0').join(',')}]`,",
        "  `a2: &a2 [${Array(10).fill('*a1').join(',')}]`,",
        "  `a3: &a3 [${Array(10).fill('*a2').join(',')}]`,",
        "  'kind: Packet',",
        "  '',",
        "].join('\\n');",
        "const result = parseFleet([{ path: 'fleet.yaml', data: 'kind: Fleet\\n' }, { path: 'packets/k.yaml', data: text }]);",
        'process.stdout.write(JSON.stringify(result.ok ? [] : result.errors.map((e) => e.code)));',
        '',
      ].join('\n'),
    );
    const child = spawnSync(process.execPath, ['--max-old-space-size=512', '--import', 'tsx', script], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(child.stderr).not.toMatch(/heap out of memory/);
    expect(child.status).toBe(0);
    expect(JSON.parse(child.stdout)).toContain('invalid_manifest');
  });
});

describe('deep nesting', () => {
  it('refuses 100,000 nested flow sequences without crashing', () => {
    const errors = hostile('packets/deep.yaml', '['.repeat(100_000));
    expect(errors.length).toBeGreaterThan(0);
  });

  it('refuses 100,000 nested flow maps without crashing', () => {
    expect(hostile('packets/deep.yaml', '{a: '.repeat(100_000)).length).toBeGreaterThan(0);
  });

  it('refuses 100,000 nested, closed flow sequences inside a packet without crashing', () => {
    const text = `kind: Packet\nname: x\nlabels: { a: ${'['.repeat(100_000)}${']'.repeat(100_000)} }\n`;
    expect(hostile('packets/deep.yaml', text).length).toBeGreaterThan(0);
  });

  it('reports 100,000 nested flow sequences as one problem saying the document is nested too deeply', () => {
    const { problems } = parseYamlDocuments({ path: 'packets/deep.yaml', data: '['.repeat(100_000) });
    expect(problems).toHaveLength(1);
    expect(problems[0]!.message).toMatch(/nested/);
  });

  it('refuses 200 levels of block maps with a problem about the depth limit', () => {
    let text = '';
    for (let i = 0; i < 200; i++) text += `${' '.repeat(i)}k${i}:\n`;
    text += `${' '.repeat(200)}v\n`;
    const errors = hostile('packets/deep.yaml', text);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.message).toMatch(/nested deeper than 64/);
  });

  it('refuses 200 levels of block sequences with a problem about the depth limit', () => {
    const errors = hostile('packets/deep.yaml', `${'- '.repeat(200)}x\n`);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.message).toMatch(/nested/);
  });

  it('still accepts ordinary nesting', () => {
    let value = 'leaf';
    for (let i = 0; i < 30; i++) value = `[${value}]`;
    expect(parseYamlDocuments({ path: 'x.yaml', data: `a: ${value}\n` }).problems).toEqual([]);
  });
});

describe('huge files', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it('refuses a 100 MB Uint8Array with a problem about the size', () => {
    const data = new Uint8Array(100 * MB).fill(0x61);
    const errors = hostile('packets/huge.yaml', data);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.location).toEqual({ file: 'packets/huge.yaml', line: 1, col: 1 });
    expect(errors[0]!.message).toContain(String(100 * MB));
    expect(errors[0]!.message).toContain(String(yamlLimits.maxFileBytes));
  });

  it('refuses a 100 MB string with a problem about the size', () => {
    const data = `kind: Packet\n# ${'x'.repeat(100 * MB - 16)}\n`;
    expect(data.length).toBe(100 * MB);
    const errors = hostile('packets/huge.yaml', data);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.message).toMatch(/bytes/);
  });

  it('accepts a file of exactly maxFileBytes and refuses one byte more', () => {
    const body = `kind: Fleet\n#`;
    const exact = body + 'x'.repeat(yamlLimits.maxFileBytes - body.length - 1) + '\n';
    expect(exact.length).toBe(yamlLimits.maxFileBytes);
    expect(parseFleet([{ path: 'fleet.yaml', data: exact }]).ok).toBe(true);
    const errors = hostile('fleet.yaml', `${exact} `);
    expect(errors[0]!.message).toContain(String(yamlLimits.maxFileBytes + 1));
  });

  it('reads at most maxFileBytes + 1 bytes of a 100 MB file in a fleet directory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gitfleet-hostile-'));
    dirs.push(dir);
    await mkdir(join(dir, 'packets'));
    await writeFile(join(dir, 'fleet.yaml'), 'kind: Fleet\n');
    const chunk = Buffer.alloc(MB, 'x');
    chunk.write('kind: Packet\n#', 0);
    const huge = Buffer.alloc(100 * MB, 'x');
    chunk.copy(huge);
    await writeFile(join(dir, 'packets', 'huge.yaml'), huge);

    const files = await readFleetDir(dir);
    expect(files.map((f) => f.path).sort()).toEqual(['fleet.yaml', 'packets/huge.yaml']);
    const file = files.find((f) => f.path === 'packets/huge.yaml')!;
    const length = typeof file.data === 'string' ? file.data.length : file.data.byteLength;
    expect(length).toBeLessThanOrEqual(yamlLimits.maxFileBytes + 1);
    expect(length).toBeGreaterThan(yamlLimits.maxFileBytes);

    const result = parseFleet(files);
    expect(result.ok).toBe(false);
    const errors = result.ok ? [] : result.errors;
    expect(errors).toHaveLength(1);
    expect(errors[0]!.code).toBe('invalid_manifest');
    expect(errors[0]!.location).toEqual({ file: 'packets/huge.yaml', line: 1, col: 1 });
    expect(errors[0]!.message).toMatch(/larger than/);
  });

  it('does not follow symbolic links out of the fleet directory, nor loop on them', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gitfleet-hostile-'));
    dirs.push(dir);
    await mkdir(join(dir, 'packets'));
    await mkdir(join(dir, 'specs'));
    await writeFile(join(dir, 'fleet.yaml'), 'kind: Fleet\n');
    const outside = join(dir, 'outside.yaml');
    await writeFile(outside, 'kind: Spec\nid: sneaky\ntarget: { a: b }\n');
    await symlink(outside, join(dir, 'specs', 'link.yaml'));
    await symlink('..', join(dir, 'packets', 'loop'));
    await symlink(tmpdir(), join(dir, 'devices'));

    const files = await readFleetDir(dir);
    expect(files.map((f) => f.path)).toEqual(['fleet.yaml']);
  });
});

describe('binary and malformed text', () => {
  it.each([1, 2, 3, 42, 20240601])('refuses 64 KiB of seeded random bytes (seed %i)', (seed) => {
    hostile('packets/random.yaml', randomBytes(seed, 64 * 1024));
  });

  it('never throws on seeded random printable garbage, and reports only located invalid_manifest', () => {
    const next = mulberry32(7);
    const alphabet = 'kind: Packet\n\t-[]{},&*!?|>\'"#%@`~=<>.../\\ abcxyz0123456789';
    for (let i = 0; i < 300; i++) {
      let text = '';
      const length = 1 + Math.floor(next() * 200);
      for (let j = 0; j < length; j++) text += alphabet[Math.floor(next() * alphabet.length)];
      for (const path of ['packets/g.yaml', 'specs/g.yaml', 'devices/g.yaml']) {
        const result = parseFleet([FLEET_FILE, { path, data: text }]);
        if (!result.ok) expectLocatedProblems(result.errors, path);
      }
    }
  });

  it('refuses bytes with a NUL', () => {
    const bytes = new TextEncoder().encode('kind: Packet\nname: x\0y\n');
    expect(messages(hostile('packets/nul.yaml', bytes))).toMatch(/NUL/);
    expect(messages(hostile('packets/nul.yaml', 'kind: Packet\u0000\n'))).toMatch(/NUL/);
  });

  it('refuses invalid UTF-8 (0xff 0xfe ...)', () => {
    const errors = hostile('packets/bad.yaml', new Uint8Array([0xff, 0xfe, 0x6b, 0x69, 0x6e, 0x64]));
    expect(errors).toHaveLength(1);
    expect(errors[0]!.location).toEqual({ file: 'packets/bad.yaml', line: 1, col: 1 });
    expect(errors[0]!.message).toMatch(/UTF-8/);
  });

  it('refuses invalid UTF-8 in the middle of a valid file, and a UTF-16 file', () => {
    const head = new TextEncoder().encode('kind: Packet\nname: ');
    expect(messages(hostile('packets/bad.yaml', new Uint8Array([...head, 0xc3, 0x28, 0x0a])))).toMatch(
      /UTF-8/,
    );
    const utf16 = new Uint8Array([0xff, 0xfe, ...[...'kind: Fleet\n'].flatMap((c) => [c.charCodeAt(0), 0])]);
    expect(hostile('fleet.yaml', utf16).length).toBeGreaterThan(0);
  });

  it('accepts a UTF-8 byte order mark', () => {
    const bytes = new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode('kind: Fleet\n')]);
    expect(parseFleet([{ path: 'fleet.yaml', data: bytes }]).ok).toBe(true);
  });

  it('refuses a file of 10,001 documents with a problem about the document limit', () => {
    const docs = Array.from({ length: 10_001 }, (_, i) => `kind: Spec\nid: s${i}\ntarget: { a: b }\n`);
    const errors = hostile('specs/many.yaml', docs.join('---\n'));
    expect(errors).toHaveLength(1);
    expect(errors[0]!.message).toContain(String(yamlLimits.maxDocuments));
    expect(errors[0]!.location).toEqual({ file: 'specs/many.yaml', line: 1, col: 1 });
  });

  it('accepts a file of exactly 10,000 documents', () => {
    const docs = Array.from({ length: 10_000 }, (_, i) => `kind: Spec\nid: s${i}\ntarget: { a: b }\n`);
    const result = parseFleet([FLEET_FILE, { path: 'specs/many.yaml', data: docs.join('---\n') }]);
    expect(result.ok && result.value.specs.length).toBe(10_000);
  });

  it('refuses 10,001 empty documents', () => {
    expect(hostile('specs/many.yaml', '---\n'.repeat(10_001)).length).toBeGreaterThan(0);
  });

  it('refuses an unterminated quote with a line and column', () => {
    const errors = hostile('packets/q.yaml', 'kind: Packet\nname: "logger\nlabels: {}\n');
    expect(messages(errors)).toMatch(/quote/);
  });

  it('locates an unterminated quote at the opening quote', () => {
    const errors = hostile('packets/q.yaml', 'kind: Packet\nname: "logger\nlabels: {}\n');
    expect(errors.find((e) => /quote/.test(e.message))?.location).toEqual({
      file: 'packets/q.yaml',
      line: 2,
      col: 7,
    });
  });

  it('refuses tab indentation at the tab', () => {
    const errors = hostile('packets/tab.yaml', 'kind: Packet\n\tname: x\n');
    expect(errors[0]!.location).toEqual({ file: 'packets/tab.yaml', line: 2, col: 1 });
    expect(errors[0]!.message).toMatch(/[Tt]ab/);
  });

  it('refuses a lone `:` with a line and column', () => {
    const errors = hostile('packets/colon.yaml', ':\n');
    expect(errors.map((e) => e.location)).toEqual([{ file: 'packets/colon.yaml', line: 1, col: 1 }]);
    expect(hostile('packets/colon.yaml', `kind: Packet\n:\n`).map((e) => e.location?.line)).toContain(2);
  });

  it('refuses a complex (non-scalar) map key', () => {
    expect(messages(hostile('packets/key.yaml', 'kind: Packet\n? [a, b]\n: c\n'))).toMatch(/key/);
  });
});

describe('YAML tags', () => {
  it('refuses !!python/object tags and executes nothing', () => {
    const marker = join(tmpdir(), `gitfleet-pwned-${process.pid}`);
    const text = [
      'kind: Packet',
      `name: !!python/object/apply:os.system ["touch ${marker}"]`,
      `labels: { a: !!python/object:os.system "touch ${marker}" }`,
      '',
    ].join('\n');
    const errors = hostile('packets/tag.yaml', text);
    expect(messages(errors)).toMatch(/tag/i);
    expect(errors.map((e) => e.location?.line)).toContain(2);
    expect(existsSync(marker)).toBe(false);
  });

  it('refuses an unknown local tag !foo at the tag', () => {
    const errors = hostile('packets/tag.yaml', 'kind: Packet\nname: !foo x\n');
    expect(errors.map((e) => [e.location?.line, e.location?.col])).toEqual([[2, 7]]);
    expect(errors[0]!.message).toContain('!foo');
  });

  it('refuses !!js/function and executes nothing', () => {
    const g = globalThis as Record<string, unknown>;
    const errors = hostile(
      'packets/tag.yaml',
      'kind: Packet\nname: !!js/function "function () { globalThis.pwned = 1 }"\n',
    );
    expect(messages(errors)).toMatch(/tag/i);
    expect(g.pwned).toBeUndefined();
  });
});

describe('parseInstalled', () => {
  it('refuses garbage with located invalid_manifest problems', () => {
    for (const data of [
      randomBytes(9, 4096),
      'hello\n',
      'a: [\n',
      '{ name: a }\n',
      '- 1\n- 2\n',
      'packets: yes\n',
    ]) {
      const result = parseInstalled({ path: 'installed.yaml', data });
      expect(result.ok).toBe(false);
      expectLocatedProblems(result.ok ? [] : result.errors, 'installed.yaml');
    }
  });

  it('refuses a 100 MB installed file and an alias bomb', () => {
    for (const data of [new Uint8Array(100 * MB), billionLaughs()]) {
      const result = parseInstalled({ path: 'installed.yaml', data });
      expect(result.ok).toBe(false);
      expectLocatedProblems(result.ok ? [] : result.errors, 'installed.yaml');
    }
  });

  it('refuses a packet listed twice, at the second entry', () => {
    const result = parseInstalled({
      path: 'installed.yaml',
      data: '- name: logger\n- name: runtime\n- name: logger\n  labels: { version: 2.0.0 }\n',
    });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors.map((e) => [e.code, e.location])).toEqual([
      ['invalid_manifest', { file: 'installed.yaml', line: 3, col: 3 }],
    ]);
    expect(result.errors[0]!.message).toContain('logger');
  });

  it('reads a status.yaml-shaped file', () => {
    const data = [
      'device: pi-0042',
      'labels: { fleet: alpha, arch: armv7l }',
      `observedRevision: ${'5f3c9a'.padEnd(40, '0')}`,
      'conditions:',
      '  - { type: Ready, status: "True", reason: Converged, message: "" }',
      'packets:',
      `  - { name: logger, labels: { version: 1.10, arch: armv7l }, sha256: ${SHA}, installedAt: 2024-06-01T12:00:00Z }`,
      '  - name: runtime',
      '    labels: { version: 2.0.0 }',
      '    requires: []',
      'errors: []',
      '',
    ].join('\n');
    const result = parseInstalled({ path: 'status.yaml', data });
    if (!result.ok) throw new Error(JSON.stringify(result.errors));
    expect(result.value.map((p) => ({ ...p, labels: { ...p.labels } }))).toEqual([
      { name: 'logger', labels: { version: '1.10', arch: 'armv7l' }, sha256: SHA, requires: [] },
      { name: 'runtime', labels: { version: '2.0.0' }, requires: [] },
    ]);
  });

  it('reads a plain YAML list and a JSON list', () => {
    const yaml = parseInstalled({
      path: 'installed.yaml',
      data: '- name: logger\n  labels: { version: 1.0.0 }\n  requires: [runtime]\n- name: runtime\n',
    });
    const json = parseInstalled({
      path: 'installed.json',
      data: '[{"name":"logger","labels":{"version":"1.0.0"},"requires":["runtime"]},{"name":"runtime"}]',
    });
    for (const result of [yaml, json]) {
      if (!result.ok) throw new Error(JSON.stringify(result.errors));
      expect(result.value.map((p) => ({ ...p, labels: { ...p.labels } }))).toEqual([
        { name: 'logger', labels: { version: '1.0.0' }, requires: ['runtime'] },
        { name: 'runtime', labels: {}, requires: [] },
      ]);
    }
  });

  it('reads an empty file as nothing installed', () => {
    expect(parseInstalled({ path: 'installed.yaml', data: '' })).toEqual({
      ok: true,
      value: [],
      warnings: [],
    });
    expect(parseInstalled({ path: 'installed.yaml', data: '[]' })).toEqual({
      ok: true,
      value: [],
      warnings: [],
    });
  });

  it('refuses two documents and a non-string label', () => {
    const two = parseInstalled({ path: 'i.yaml', data: '- name: a\n---\n- name: b\n' });
    expect(two.ok).toBe(false);
    expect(two.ok ? undefined : two.errors[0]!.location).toEqual({ file: 'i.yaml', line: 3, col: 1 });
    const label = parseInstalled({ path: 'i.yaml', data: '- name: a\n  labels: { a: { b: c } }\n' });
    expect(label.ok).toBe(false);
    expect(label.ok ? undefined : label.errors[0]!.location).toEqual({ file: 'i.yaml', line: 2, col: 13 });
  });

  it('accepts a list followed by an empty trailing document', () => {
    expect(parseInstalled({ path: 'i.yaml', data: '- name: a\n---\n' }).ok).toBe(true);
  });
});

describe('parseLabelArgs', () => {
  it('parses k=v', () => {
    expect({ ...parseLabelArgs(['fleet=alpha', 'kubernetes.io/arch=arm64']) }).toEqual({
      fleet: 'alpha',
      'kubernetes.io/arch': 'arm64',
    });
  });

  it('gives k= the empty value, present', () => {
    const labels = parseLabelArgs(['k=']);
    expect(Object.hasOwn(labels, 'k')).toBe(true);
    expect(labels.k).toBe('');
  });

  it('splits at the first =', () => {
    expect({ ...parseLabelArgs(['k=a=b']) }).toEqual({ k: 'a=b' });
    expect({ ...parseLabelArgs(['k==']) }).toEqual({ k: '=' });
  });

  it('keeps values as written: spaces, case, numbers', () => {
    expect({ ...parseLabelArgs(['v=1.10', 'n=010', 'Site=EU West']) }).toEqual({
      v: '1.10',
      n: '010',
      Site: 'EU West',
    });
  });

  it('gives no labels for no arguments', () => {
    expect(Object.keys(parseLabelArgs([]))).toEqual([]);
  });

  it('treats __proto__ as an ordinary key', () => {
    const labels = parseLabelArgs(['__proto__=x']);
    expect(Object.hasOwn(labels, '__proto__')).toBe(true);
    expect(Object.getPrototypeOf(labels)).toBeNull();
  });

  it.each([
    ['=v', /non-empty key/],
    ['novalue', /key=value/],
    ['', /key=value/],
    ['a b=c', /key=value/],
    ['k\u0007=v', /key=value/],
    ['k=a\u0007b', /control/],
    ['k=line\nbreak', /control/],
    ['k=\u0000', /control/],
  ])('refuses %j with an Error', (arg, message) => {
    expect(() => parseLabelArgs([arg])).toThrow(message);
    expect(() => parseLabelArgs([arg])).toThrow(Error);
  });

  it('refuses a duplicate key, naming it', () => {
    expect(() => parseLabelArgs(['k=1', 'k=2'])).toThrow(/k is given twice/);
    expect(() => parseLabelArgs(['k=1', 'k=1'])).toThrow(/twice/);
  });
});
