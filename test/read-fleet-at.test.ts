import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRepo } from '../src/git/git-repo.js';
import { createFleetMemo, readFleetAt } from '../src/git/read-fleet-at.js';
import { readFleetDir } from '../src/git/read-fleet-dir.js';
import { parseFleet } from '../src/schema/parse-fleet.js';
import { commitFiles, git, initFleetRepo } from './support/git-fixture.js';
import { exampleFiles } from './support/example-files.js';
import { ensureBuilt, projectRoot, runCli, runCliJson } from './support/run-cli.js';

let dir: string;
let first: string;
let second: string;

beforeAll(() => {
  ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), 'gitfleet-read-at-'));
  first = initFleetRepo(dir, { files: exampleFiles() });
  git(dir, ['tag', '-a', 'v1', '-m', 'first release']);
  second = commitFiles(
    dir,
    {
      'specs/cameras.yaml':
        'kind: Spec\nid: cameras\ntarget: { hw: cam-v2 }\napps: [ { name: camera, version: "^9" } ]\n',
    },
    { message: 'Ask cameras for a version nobody has' },
  );
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('readFleetAt', () => {
  it('reads the same fleet from git objects as from the working tree', async () => {
    const repo = await openRepo(dir);
    const { commit, result } = await readFleetAt(repo, 'v1');
    expect(commit).toBe(first);
    const fromDisk = parseFleet(await readFleetDir(join(projectRoot, 'fleet-example')));
    expect(result.ok && fromDisk.ok).toBe(true);
    if (!result.ok || !fromDisk.ok) return;
    // Manifests keep repository paths; only problems name the revision.
    expect(result.value).toEqual(fromDisk.value);
  });

  it('resolves branches, tags, abbreviated ids and ~N / ^N steps', async () => {
    const repo = await openRepo(dir);
    expect((await readFleetAt(repo, 'main')).commit).toBe(second);
    expect((await readFleetAt(repo, 'HEAD~1')).commit).toBe(first);
    expect((await readFleetAt(repo, 'main^')).commit).toBe(first);
    expect((await readFleetAt(repo, second.slice(0, 8))).commit).toBe(second);
    expect((await readFleetAt(repo, `${second}^0`)).commit).toBe(second);
    await expect(readFleetAt(repo, 'HEAD~5')).rejects.toMatchObject({ code: 'invalid_manifest' });
    await expect(readFleetAt(repo, 'no-such-branch')).rejects.toMatchObject({
      code: 'invalid_manifest',
      message: expect.stringContaining('no revision "no-such-branch"') as string,
    });
  });

  it('refuses a directory that is not a git repository', async () => {
    await expect(openRepo(join(projectRoot, 'fleet-example'))).rejects.toMatchObject({
      code: 'invalid_manifest',
      message: expect.stringContaining('is not a git repository') as string,
    });
  });

  it('ignores uncommitted files and symbolic links in the tree', async () => {
    const work = mkdtempSync(join(tmpdir(), 'gitfleet-read-at-'));
    try {
      initFleetRepo(work, { files: exampleFiles() });
      symlinkSync('/etc/passwd', join(work, 'specs', 'passwd.yaml'));
      const head = commitFiles(work, {}, { message: 'A link nobody should follow' });
      writeFileSync(join(work, 'specs', 'broken.yaml'), 'kind: [');
      const { commit, result } = await readFleetAt(await openRepo(work), 'HEAD');
      expect(commit).toBe(head);
      expect(result.ok).toBe(true);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });

  it('locates problems at path@shortsha:line:col', async () => {
    const work = mkdtempSync(join(tmpdir(), 'gitfleet-read-at-'));
    try {
      initFleetRepo(work, { files: exampleFiles() });
      const head = commitFiles(
        work,
        { 'packets/bad.yaml': 'kind: Packet\nname: Bad Name\n' },
        { message: 'bad' },
      );
      const { result } = await readFleetAt(await openRepo(work), 'HEAD');
      expect(result.ok).toBe(false);
      if (result.ok) return;
      const badName = result.errors.find((e) => e.message.includes('Bad Name'));
      expect(badName?.location).toMatchObject({
        file: `packets/bad.yaml@${head.slice(0, 7)}`,
        line: 2,
      });
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });

  it('after a one-file change parses only that file and reuses the rest', async () => {
    const repo = await openRepo(dir);
    const memo = createFleetMemo();
    await readFleetAt(repo, first, memo);
    const before = new Map(memo.files);
    await readFleetAt(repo, second, memo);
    const changed = [...memo.files.entries()].filter(([key, part]) => before.get(key) !== part);
    expect(changed.map(([, part]) => part.path)).toEqual(['specs/cameras.yaml']);
    expect(memo.files.size).toBe(before.size);
  });
});

describe('plan and validate --rev', () => {
  it('validate reads the revision, not the working tree', () => {
    expect(runCli(['validate', '--dir', dir, '--rev', 'v1']).status).toBe(0);
    const head = runCliJson<{ ok: boolean; errors: { code: string; file: string }[] }>([
      'validate',
      '--dir',
      dir,
      '--rev',
      'main',
    ]);
    expect(head.status).toBe(1);
    expect(head.json.errors).toContainEqual(
      expect.objectContaining({
        code: 'no_matching_packet',
        file: `devices/pi-0043.yaml@${second.slice(0, 7)}`,
      }),
    );
  });

  it('plan at a revision resolves the device from that revision', () => {
    const ok = runCliJson<{ desired: { name: string }[] }>([
      'plan',
      '--dir',
      dir,
      '--rev',
      'v1',
      '--device-id',
      'pi-0043',
    ]);
    expect(ok.status).toBe(0);
    expect(ok.json.desired.map((d) => d.name)).toContain('camera');
    const failing = runCliJson<{ error: { code: string } }>([
      'plan',
      '--dir',
      dir,
      '--rev',
      'main',
      '--device-id',
      'pi-0043',
    ]);
    expect(failing.status).toBe(1);
    expect(failing.json.error.code).toBe('no_matching_packet');
  });

  it('a bad revision is a typed error', () => {
    const bad = runCliJson<{ error: { code: string; message: string } }>([
      'plan',
      '--dir',
      dir,
      '--rev',
      'nope',
    ]);
    expect(bad.status).toBe(1);
    expect(bad.json.error).toMatchObject({
      code: 'invalid_manifest',
      message: expect.stringContaining('nope') as string,
    });
  });
});
