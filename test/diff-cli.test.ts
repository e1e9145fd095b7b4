import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commitFiles, initFleetRepo } from './support/git-fixture.js';
import { exampleFiles } from './support/example-files.js';
import { ensureBuilt, runCli, runCliJson } from './support/run-cli.js';

let dir: string;
let base: string;
let head: string;

beforeAll(() => {
  ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), 'gitfleet-diff-'));
  const files = exampleFiles();
  base = initFleetRepo(dir, { files });
  head = commitFiles(
    dir,
    {
      'specs/cameras.yaml': null,
      'specs/beta-base.yaml': (files['specs/beta-base.yaml'] ?? '').replace("'^1.3.0'", "'~1.2.0'"),
    },
    { message: 'Drop cameras; pin beta to logger 1.2' },
  );
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface DiffJson {
  base: string;
  head: string;
  summary: string;
  devices: { checked: number; changed: number; failing: number };
  groups: { devices: string[]; changes: { type: string; name?: string; specs?: string[] }[] }[];
}

describe('gitfleet diff', () => {
  it('prints a markdown PR comment with a one-line summary and a table', () => {
    const result = runCli(['diff', base, head, '--dir', dir]);
    expect(result.status).toBe(0);
    const [summary, , stats] = result.stdout.split('\n');
    expect(summary).toMatch(/^\*\*3 devices change: /);
    expect(stats).toBe('7 devices checked, 3 change, 2 fail to resolve at HEAD.');
    expect(result.stdout).toContain('| Devices | Change | Because of |');
    expect(result.stdout).toContain('uninstall camera 1.0.0');
  });

  it('--json lists every device and names the spec behind each change', () => {
    const { status, json } = runCliJson<DiffJson>(['diff', base, head, '--dir', dir]);
    expect(status).toBe(0);
    expect(json).toMatchObject({ base, head, devices: { checked: 7, changed: 3, failing: 2 } });
    const uninstall = json.groups.find((g) => g.changes.some((c) => c.type === 'uninstall'));
    expect(uninstall?.devices).toEqual(['pi-0043']);
    expect(uninstall?.changes).toContainEqual(
      expect.objectContaining({ name: 'camera', specs: ['cameras'] }) as unknown,
    );
    const failing = json.groups.find((g) => g.changes.some((c) => c.type === 'failing'));
    expect(failing?.devices).toEqual(['nuc-0001', 'pi-0100']);
  });

  it('--fail-on error exits 1 only when a device newly fails', () => {
    expect(runCli(['diff', base, head, '--dir', dir, '--fail-on', 'error']).status).toBe(1);
    expect(runCli(['diff', head, base, '--dir', dir, '--fail-on', 'error']).status).toBe(0);
    const same = runCli(['diff', base, base, '--dir', dir, '--fail-on', 'error']);
    expect(same.status).toBe(0);
    expect(same.stdout.trim()).toBe('**No device changes (7 devices checked)**');
  });

  it('a revision that does not parse or does not exist is a typed error', () => {
    const broken = commitFiles(dir, { 'specs/broken.yaml': 'kind: Spec\nid: [\n' }, { message: 'broken' });
    const bad = runCliJson<{ error: { code: string; message: string } }>([
      'diff',
      base,
      broken,
      '--dir',
      dir,
    ]);
    expect(bad.status).toBe(1);
    expect(bad.json.error.code).toBe('invalid_manifest');
    expect(bad.json.error.message).toContain(`specs/broken.yaml@${broken.slice(0, 7)}:`);
    const missing = runCliJson<{ error: { code: string } }>(['diff', 'nope', head, '--dir', dir]);
    expect(missing).toMatchObject({ status: 1, json: { error: { code: 'invalid_manifest' } } });
  });
});
