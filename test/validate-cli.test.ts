import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { appendFile, cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBuilt, projectRoot as root, runCli as gitfleet, runCliJson } from './support/run-cli.js';

/** End-to-end: the built CLI (`node bin/run.js`) against real directories, in real processes. */

const example = join(root, 'fleet-example');

interface ProblemJson {
  code: string;
  message: string;
  file?: string;
  line?: number;
  col?: number;
}

interface ValidateJson {
  ok: boolean;
  errors: ProblemJson[];
  warnings: ProblemJson[];
  counts: { packets: number; specs: number; devices: number };
}

const temps: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'gitfleet-cli-'));
  temps.push(dir);
  return dir;
}

async function copyExample(): Promise<string> {
  const dir = join(await tempDir(), 'fleet');
  await cp(example, dir, { recursive: true });
  return dir;
}

beforeAll(() => ensureBuilt(), 180_000);

afterAll(async () => {
  for (const dir of temps) await rm(dir, { recursive: true, force: true });
});

describe('gitfleet validate', () => {
  it('exits 0 on fleet-example', () => {
    const run = gitfleet(['validate', '--dir', 'fleet-example']);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/valid \(\d+ packets, \d+ specs, \d+ devices/);
  });

  it('prints one JSON document with ok:true and counts under --json', async () => {
    const run = runCliJson<ValidateJson>(['validate', '--dir', 'fleet-example']);
    expect(run.status).toBe(0);
    const report = run.json;
    expect(report.ok).toBe(true);
    expect(report.errors).toEqual([]);
    const packetFiles = await Promise.all(
      ['camera', 'logger', 'runtime', 'sensor-agent', 'vpn'].map((n) =>
        readFile(join(example, 'packets', `${n}.yaml`), 'utf8'),
      ),
    );
    const packets = packetFiles.join('\n').match(/^kind: Packet$/gm)?.length;
    expect(report.counts).toEqual({ packets, specs: 5, devices: 7 });
  });

  it('accepts an absolute --dir', () => {
    expect(gitfleet(['validate', '--dir', example]).status).toBe(0);
  });

  it('accepts --dir ./fleet-example', () => {
    expect(gitfleet(['validate', '--dir', './fleet-example']).status).toBe(0);
  });

  it('validates the current directory by default (--dir .)', () => {
    expect(gitfleet(['validate'], example).status).toBe(0);
  });

  it('exits 1 on a broken fleet and prints file:line:col for the broken file', async () => {
    const dir = await copyExample();
    const path = join(dir, 'packets', 'vpn.yaml');
    const text = await readFile(path, 'utf8');
    const lines = text.split('\n');
    const line = lines.findIndex((l) => /^\s+sha256:/.test(l));
    expect(line).toBeGreaterThan(0);
    const col = lines[line]!.indexOf('sha256') + 1;
    lines[line] = lines[line]!.replace(/sha256: \S+/, 'sha256: not-a-hash');
    await writeFile(path, lines.join('\n'));

    const run = gitfleet(['validate', '--dir', dir]);
    expect(run.status).toBe(1);
    expect(run.stdout).toContain(`packets/vpn.yaml:${line + 1}:${col}: error invalid_manifest:`);
    expect(run.stdout).toContain('not-a-hash');
    expect(run.stdout).toMatch(/1 errors?, 0 warnings/);

    const jsonRun = runCliJson<ValidateJson>(['validate', '--dir', dir]);
    expect(jsonRun.status).toBe(1);
    const report = jsonRun.json;
    expect(report.ok).toBe(false);
    expect(report.errors).toEqual([
      {
        code: 'invalid_manifest',
        message: expect.stringContaining('not-a-hash') as string,
        file: 'packets/vpn.yaml',
        line: line + 1,
        col,
      },
    ]);
  });

  it('reports a YAML syntax error with file:line:col', async () => {
    const dir = await copyExample();
    await writeFile(join(dir, 'specs', 'broken.yaml'), 'kind: Spec\nid: broken\n\ttarget: {}\n');
    const run = runCliJson<ValidateJson>(['validate', '--dir', dir]);
    expect(run.status).toBe(1);
    const report = run.json;
    expect(report.errors.map((e) => [e.code, e.file, e.line, e.col])).toEqual([
      ['invalid_manifest', 'specs/broken.yaml', 3, 1],
    ]);
  });

  it('reports a duplicate packet across files with both places', async () => {
    const dir = await copyExample();
    const vpn = await readFile(join(dir, 'packets', 'vpn.yaml'), 'utf8');
    const first = vpn.split(/^---$/m)[0]!;
    await writeFile(join(dir, 'packets', 'zz-copy.yaml'), first);
    const run = runCliJson<ValidateJson>(['validate', '--dir', dir]);
    expect(run.status).toBe(1);
    const report = run.json;
    expect(report.errors).toHaveLength(1);
    expect(report.errors[0]).toMatchObject({ code: 'duplicate_packet', file: 'packets/zz-copy.yaml' });
    expect(report.errors[0]!.message).toContain('packets/vpn.yaml:');
  });

  it('exits 1 with the error at a device record that cannot be resolved', async () => {
    const dir = await copyExample();
    await writeFile(
      join(dir, 'specs', 'ghost.yaml'),
      'kind: Spec\nid: ghost\ntarget: { fleet: ghosts }\napps:\n  - name: ghost-app\n',
    );
    await writeFile(
      join(dir, 'devices', 'ghost-0001.yaml'),
      'kind: Device\nid: ghost-0001\nlabels: { fleet: ghosts, arch: armv7l }\n',
    );

    const run = runCliJson<ValidateJson>(['validate', '--dir', dir]);
    expect(run.status).toBe(1);
    const report = run.json;
    expect(report.ok).toBe(false);
    expect(report.errors).toEqual([
      {
        code: 'no_matching_packet',
        message: expect.stringMatching(/ghost-0001.*ghost-app|ghost-app.*ghost-0001/) as string,
        file: 'devices/ghost-0001.yaml',
        line: 1,
        col: 1,
      },
    ]);
    // The spec asking for an app no packet provides is a warning on its own.
    expect(report.warnings.map((w) => w.file)).toContain('specs/ghost.yaml');

    const human = gitfleet(['validate', '--dir', dir]);
    expect(human.status).toBe(1);
    expect(human.stdout).toContain('devices/ghost-0001.yaml:1:1: error no_matching_packet:');
  });

  it('exits non-zero with a clear message for a directory that does not exist', () => {
    const run = gitfleet(['validate', '--dir', '/nonexistent']);
    expect(run.status).not.toBe(0);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain('/nonexistent');
    expect(run.stderr).toMatch(/not a directory|does not exist|no such/i);
  });

  it('prints {"error":{"code":...}} for a directory that does not exist under --json', () => {
    const run = runCliJson<{ error: { code: string; message: string } }>([
      'validate',
      '--dir',
      '/nonexistent',
    ]);
    expect(run.status).not.toBe(0);
    const out = run.json;
    expect(typeof out.error.code).toBe('string');
    expect(out.error.message).toContain('/nonexistent');
  });

  it('refuses a directory without fleet.yaml, located at fleet.yaml:1:1', async () => {
    const dir = await tempDir();
    const run = runCliJson<ValidateJson>(['validate', '--dir', dir]);
    expect(run.status).toBe(1);
    expect(run.json.errors).toEqual([
      expect.objectContaining({ code: 'invalid_manifest', file: 'fleet.yaml', line: 1, col: 1 }),
    ]);
  });

  it('refuses a 100 MB manifest and locates it', async () => {
    const dir = await copyExample();
    const big = Buffer.alloc(100 * 1024 * 1024, '#');
    await appendFile(join(dir, 'packets', 'huge.yaml'), big);
    const run = runCliJson<ValidateJson>(['validate', '--dir', dir]);
    expect(run.status).toBe(1);
    expect(run.json.errors).toEqual([
      expect.objectContaining({ code: 'invalid_manifest', file: 'packets/huge.yaml', line: 1, col: 1 }),
    ]);
  });
});

describe('gitfleet init', () => {
  it('writes a fleet that validates, and refuses to write it again', async () => {
    const dir = join(await tempDir(), 'new-fleet');
    const init = gitfleet(['init', dir]);
    expect(init.stderr).toBe('');
    expect(init.status).toBe(0);
    expect(existsSync(join(dir, 'fleet.yaml'))).toBe(true);

    const validate = gitfleet(['validate', '--dir', dir]);
    expect(validate.status).toBe(0);
    expect(validate.stdout).toContain('valid');

    const before = await readFile(join(dir, 'fleet.yaml'), 'utf8');
    const again = gitfleet(['init', dir]);
    expect(again.status).toBe(1);
    expect(again.stderr).toContain('fleet.yaml');
    expect(await readFile(join(dir, 'fleet.yaml'), 'utf8')).toBe(before);

    const againJson = runCliJson<{ error: { code: string } }>(['init', dir]);
    expect(againJson.status).toBe(1);
    expect(againJson.json.error.code).toBe('invalid_manifest');
  });

  it('prints the written files as one JSON document under --json', async () => {
    const dir = join(await tempDir(), 'json-fleet');
    const run = runCliJson<{ dir: string; files: string[] }>(['init', dir]);
    expect(run.status).toBe(0);
    const out = run.json;
    expect(out.files).toContain('fleet.yaml');
    expect(gitfleet(['validate', '--dir', dir, '--json']).status).toBe(0);
  });
});
