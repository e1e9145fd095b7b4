import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addPacket, type AddPacketOptions } from '../src/agent/add-packet.js';
import { packArtifact } from '../src/agent/pack-artifact.js';
import { loadFleet, validateFleetSource } from '../src/git/load-fleet.js';
import { GitfleetError } from '../src/schema/gitfleet-error.js';
import { ensureBuilt, runCliJson } from './support/run-cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'gitfleet-packet-add-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let counter = 0;
function freshDir(prefix: string): string {
  const dir = join(tmp, `${prefix}-${++counter}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

type Tree = Record<string, string | { data: string; mode: number } | { dir: true }>;

/** The source of most tests: hooks, a nested tool, config, an empty directory. */
const sample: Tree = {
  'install.sh': { data: '#!/bin/sh\necho install\n', mode: 0o755 },
  'check.sh': { data: '#!/bin/sh\nexit 0\n', mode: 0o700 },
  'bin/tool': { data: '#!/bin/sh\necho tool\n', mode: 0o775 },
  'etc/config.yaml': { data: 'level: info\n', mode: 0o664 },
  'etc/empty': { dir: true },
  'lib/data.bin': { data: 'x'.repeat(3000), mode: 0o600 },
};

/** Writes `tree` under a new directory, in the given order, with the given modes and a given mtime. */
function writeTree(tree: Tree, options: { order?: 'forward' | 'reverse'; mtime?: number } = {}): string {
  const root = freshDir('src');
  const paths = Object.keys(tree);
  if (options.order === 'reverse') paths.reverse();
  for (const path of paths) {
    const spec = tree[path]!;
    const full = join(root, path);
    if (typeof spec === 'object' && 'dir' in spec) {
      mkdirSync(full, { recursive: true });
      continue;
    }
    mkdirSync(dirname(full), { recursive: true });
    writeFileSync(full, typeof spec === 'string' ? spec : spec.data);
    chmodSync(full, typeof spec === 'string' ? 0o644 : spec.mode);
  }
  if (options.mtime !== undefined) {
    for (const path of [...paths, '.']) utimesSync(join(root, path), options.mtime, options.mtime);
  }
  return root;
}

function newFleet(): string {
  const dir = freshDir('fleet');
  writeFileSync(join(dir, 'fleet.yaml'), 'kind: Fleet\n');
  return dir;
}

function options(srcDir: string, fleetDir: string, extra: Partial<AddPacketOptions> = {}): AddPacketOptions {
  return { srcDir, fleetDir, name: 'logger', labels: ['version=1.2.0', 'arch=arm64'], ...extra };
}

/** Runs addPacket expecting a refusal; returns the typed error. */
async function refusal(opts: AddPacketOptions): Promise<GitfleetError> {
  const error: unknown = await addPacket(opts).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(GitfleetError);
  return error as GitfleetError;
}

/** `tar -tvzf` lines as [mode, owner, size, date, time, name...]. UTC, so the date does not depend on TZ. */
function tarListing(file: string): string[][] {
  const out = execFileSync('tar', ['-tvzf', file], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } });
  return out
    .trim()
    .split('\n')
    .map((line) => line.split(/\s+/));
}

const sha256sum = (file: string) => execFileSync('sha256sum', [file], { encoding: 'utf8' }).split(' ')[0];

describe('packArtifact: reproducible artifacts', () => {
  it('gives the same sha256 for the same content regardless of mtimes, creation order, group/other bits and path', async () => {
    const a = writeTree(sample, { order: 'forward', mtime: 1_000_000_000 });
    const noisy: Tree = {
      ...sample,
      'install.sh': { data: '#!/bin/sh\necho install\n', mode: 0o700 },
      'check.sh': { data: '#!/bin/sh\nexit 0\n', mode: 0o755 },
      'etc/config.yaml': { data: 'level: info\n', mode: 0o600 },
      'lib/data.bin': { data: 'x'.repeat(3000), mode: 0o666 },
    };
    const b = writeTree(noisy, { order: 'reverse', mtime: 1_700_000_000 });
    const out = freshDir('out');
    const first = await packArtifact(a, join(out, 'a.tar.gz'));
    const again = await packArtifact(a, join(out, 'a2.tar.gz'));
    const other = await packArtifact(b, join(out, 'b.tar.gz'));
    expect(again.sha256).toBe(first.sha256);
    expect(other.sha256).toBe(first.sha256);
    expect(readFileSync(join(out, 'b.tar.gz')).equals(readFileSync(join(out, 'a.tar.gz')))).toBe(true);
    expect(first.size).toBe(statSync(join(out, 'a.tar.gz')).size);
    expect(sha256sum(join(out, 'a.tar.gz'))).toBe(first.sha256);
    // The gzip header: no mtime, OS byte 255 (unknown) instead of the packing machine's.
    const header = readFileSync(join(out, 'a.tar.gz')).subarray(0, 10);
    expect([...header.subarray(0, 3)]).toEqual([0x1f, 0x8b, 8]);
    expect(header.readUInt32LE(4)).toBe(0);
    expect(header[9]).toBe(255);
  });

  it('lists sorted entries with directories, uid/gid 0, the epoch as date and normalised modes (stock tar)', async () => {
    const src = writeTree(sample, { order: 'reverse' });
    const file = join(freshDir('out'), 'x.tar.gz');
    const packed = await packArtifact(src, file);
    const listing = tarListing(file);
    expect(listing.map((l) => l.slice(5).join(' '))).toEqual([
      'bin/',
      'bin/tool',
      'check.sh',
      'etc/',
      'etc/config.yaml',
      'etc/empty/',
      'install.sh',
      'lib/',
      'lib/data.bin',
    ]);
    expect(packed.entries).toHaveLength(9);
    expect(new Set(listing.map((l) => l[1]))).toEqual(new Set(['0/0']));
    expect(new Set(listing.map((l) => `${l[3]} ${l[4]}`))).toEqual(new Set(['1970-01-01 00:00']));
    expect(Object.fromEntries(listing.map((l) => [l[5], l[0]]))).toMatchObject({
      'bin/': 'drwxr-xr-x',
      'bin/tool': '-rwxr-xr-x',
      'check.sh': '-rwxr-xr-x',
      'etc/config.yaml': '-rw-r--r--',
      'install.sh': '-rwxr-xr-x',
      'lib/data.bin': '-rw-r--r--',
    });
  });

  it('stores a symlink that stays inside as a symlink and a hard link as a regular file', async () => {
    const src = writeTree(sample);
    symlinkSync('bin/tool', join(src, 'current'));
    symlinkSync('../install.sh', join(src, 'bin/setup'));
    linkSync(join(src, 'lib/data.bin'), join(src, 'lib/copy.bin'));
    const file = join(freshDir('out'), 'links.tar.gz');
    await packArtifact(src, file);
    const byName = new Map(tarListing(file).map((l) => [l[5], l]));
    expect(byName.get('current')).toEqual([
      'lrwxr-xr-x',
      '0/0',
      '0',
      '1970-01-01',
      '00:00',
      'current',
      '->',
      'bin/tool',
    ]);
    expect(byName.get('bin/setup')?.slice(5)).toEqual(['bin/setup', '->', '../install.sh']);
    expect(byName.get('lib/copy.bin')?.slice(0, 3)).toEqual(['-rw-r--r--', '0/0', '3000']);
    expect(byName.get('lib/data.bin')?.slice(0, 3)).toEqual(['-rw-r--r--', '0/0', '3000']);
  });
});

describe('addPacket', () => {
  it('stores the artifact by content and writes a manifest that validates, with hooks, timeout and requires', async () => {
    const src = writeTree({ ...sample, 'doc.txt': { data: 'read me\n', mode: 0o644 } });
    const fleet = newFleet();
    const result = await addPacket(
      options(src, fleet, {
        hooks: { install: './install.sh', check: 'check.sh', uninstall: 'doc.txt' },
        timeoutSeconds: 90,
        requires: ['runtime@^2', 'base'],
      }),
    );
    expect(result.file).toBe('packets/logger/1.2.0.yaml');
    expect(result.replaced).toBe(false);
    expect(result.unchanged).toBe(false);
    expect(result.artifactPath).toBe(join(fleet, 'artifacts', 'logger', `${result.sha256}.tar.gz`));
    expect(sha256sum(result.artifactPath)).toBe(result.sha256);
    expect(statSync(result.artifactPath).size).toBe(result.size);
    expect(result.warnings).toEqual([
      "hook uninstall 'doc.txt' is not executable (its owner has no x bit): the agent cannot run it as is",
    ]);
    const text = readFileSync(result.path, 'utf8');
    expect(text.split('\n')[0]).toBe('# yaml-language-server: $schema=../../schemas/packet.schema.json');
    const report = await validateFleetSource(fleet);
    expect(report.errors).toEqual([]);
    expect(report.ok).toBe(true);
    const [packet] = (await loadFleet(fleet)).packets;
    expect(packet).toMatchObject({
      name: 'logger',
      labels: { arch: 'arm64', version: '1.2.0' },
      artifact: { url: `logger/${result.sha256}.tar.gz`, sha256: result.sha256, size: result.size },
      hooks: { install: './install.sh', check: './check.sh', uninstall: './doc.txt', timeoutSeconds: 90 },
      requires: [
        { name: 'runtime', version: '^2' },
        { name: 'base', labels: {} },
      ],
    });
    // Nothing but the artifact is left in the store.
    expect(readdirSync(join(fleet, 'artifacts'))).toEqual(['logger']);
  });

  it('keeps label values as strings and names the file by sha256 prefix without a version label', async () => {
    const src = writeTree(sample);
    const fleet = newFleet();
    const result = await addPacket(
      options(src, fleet, {
        name: 'tool',
        labels: ['release=1.10', 'note=', 'flag=yes', 'kubernetes.io/arch=arm64'],
      }),
    );
    expect(result.file).toBe(`packets/tool/${result.sha256.slice(0, 12)}.yaml`);
    const [packet] = (await loadFleet(fleet)).packets;
    expect({ ...packet?.labels }).toEqual({
      release: '1.10',
      note: '',
      flag: 'yes',
      'kubernetes.io/arch': 'arm64',
    });
    expect(result.manifest.artifact.url).toBe(`tool/${result.sha256}.tar.gz`);
  });

  it('is idempotent: the same packet again writes nothing; the same version for another arch gets its own file', async () => {
    const src = writeTree(sample);
    const fleet = newFleet();
    const first = await addPacket(options(src, fleet, { hooks: { install: 'install.sh' } }));
    const before = statSync(first.path).mtimeMs;
    const again = await addPacket(options(writeTree(sample), fleet, { hooks: { install: './install.sh' } }));
    expect(again).toMatchObject({ unchanged: true, replaced: false, file: first.file, sha256: first.sha256 });
    expect(statSync(first.path).mtimeMs).toBe(before);
    const amd64 = await addPacket(options(src, fleet, { labels: ['version=1.2.0', 'arch=amd64'] }));
    expect(amd64.file).toMatch(/^packets\/logger\/1\.2\.0-[0-9a-f]{8}\.yaml$/);
    const report = await validateFleetSource(fleet);
    expect(report.ok).toBe(true);
    expect(report.counts.packets).toBe(2);
  });

  it('refuses another artifact for the same name and labels, and --force replaces it', async () => {
    const fleet = newFleet();
    const first = await addPacket(options(writeTree(sample), fleet));
    const text = readFileSync(first.path, 'utf8');
    const changed = writeTree({ ...sample, 'etc/config.yaml': 'level: debug\n' });
    const error = await refusal(options(changed, fleet));
    expect(error.code).toBe('duplicate_packet');
    expect(error.message).toMatch(
      /^packet logger \{arch: arm64, version: 1\.2\.0\} already exists at packets\/logger\/1\.2\.0\.yaml:2:1 with another artifact \(sha256 [0-9a-f]{12}… there, [0-9a-f]{12}… packed now\)$/,
    );
    expect(error.hint).toBe('pass --force to replace it');
    expect(readFileSync(first.path, 'utf8')).toBe(text);
    expect(readdirSync(join(fleet, 'artifacts', 'logger'))).toEqual([`${first.sha256}.tar.gz`]);

    const replaced = await addPacket(options(changed, fleet, { force: true }));
    expect(replaced).toMatchObject({ replaced: true, unchanged: false, file: first.file });
    expect(replaced.sha256).not.toBe(first.sha256);
    const fleetNow = await loadFleet(fleet);
    expect(fleetNow.packets.map((p) => p.artifact.sha256)).toEqual([replaced.sha256]);
  });

  it('refuses the same artifact with other hooks, and a packet that shares a multi-document file even with force', async () => {
    const fleet = newFleet();
    const src = writeTree(sample);
    await addPacket(options(src, fleet));
    const hooks = await refusal(options(src, fleet, { hooks: { install: 'install.sh' } }));
    expect(hooks.code).toBe('duplicate_packet');
    expect(hooks.message).toMatch(/with the same artifact but other hooks or requires$/);

    const shared = newFleet();
    const artifact = { url: 'logger/x.tar.gz', sha256: 'a'.repeat(64), size: 1 };
    const doc = (arch: string) =>
      `kind: Packet\nname: logger\nlabels: { version: 1.2.0, arch: ${arch} }\nartifact: ${JSON.stringify(artifact)}\n`;
    mkdirSync(join(shared, 'packets'));
    writeFileSync(join(shared, 'packets/logger.yaml'), `${doc('amd64')}---\n${doc('arm64')}`);
    const multi = await refusal(options(src, shared, { force: true }));
    expect(multi.code).toBe('duplicate_packet');
    expect(multi.message).toMatch(/at packets\/logger\.yaml:6:1 shares its file with 1 other document\(s\)/);
  });

  it.each([
    ['Logger', /^packet name 'Logger' must match \[a-z0-9\]\[a-z0-9._-\]\{0,63\}$/],
    ['-x', /packet name '-x' must match/],
    ['../x', /packet name '\.\.\/x' must match/],
    ['a'.repeat(65), /must match/],
  ])('refuses the name %j', async (name, message) => {
    const error = await refusal(options(writeTree(sample), newFleet(), { name }));
    expect(error.code).toBe('invalid_manifest');
    expect(error.message).toMatch(message);
  });

  it.each([
    [['novalue'], /--label novalue: expected key=value with a non-empty key/],
    [['=x'], /--label =x: expected key=value/],
    [['a=1', 'a=2'], /--label a is given twice/],
    [['k=a\u0001b'], /control characters are not allowed/],
  ])('refuses the labels %j', async (labels, message) => {
    const error = await refusal(options(writeTree(sample), newFleet(), { labels }));
    expect(error.code).toBe('invalid_manifest');
    expect(error.message).toMatch(message);
  });

  it('refuses hooks that are absolute, climb out, are missing or are not regular files', async () => {
    const src = writeTree(sample);
    symlinkSync('install.sh', join(src, 'link.sh'));
    const fleet = newFleet();
    const cases: [AddPacketOptions['hooks'], RegExp][] = [
      [
        { install: '/bin/sh' },
        /^hook install '\/bin\/sh' is an absolute path: hooks are paths inside the artifact$/,
      ],
      [{ check: '../check.sh' }, /^hook check '\.\.\/check\.sh' contains '\.\.'/],
      [{ install: 'bin/../../x.sh' }, /contains '\.\.'/],
      [{ install: 'missing.sh' }, /^hook install 'missing\.sh' does not exist in /],
      [{ uninstall: 'etc' }, /^hook uninstall 'etc' is a directory in .*, not a regular file$/],
      [{ install: 'link.sh' }, /^hook install 'link\.sh' is a symlink in .*, not a regular file$/],
    ];
    for (const [hooks, message] of cases) {
      const error = await refusal(options(src, fleet, { hooks }));
      expect(error.code).toBe('invalid_manifest');
      expect(error.message).toMatch(message);
    }
    expect(existsSync(join(fleet, 'packets'))).toBe(false);
  });

  it('refuses bad requires and timeouts', async () => {
    const src = writeTree(sample);
    const fleet = newFleet();
    const cases: [Partial<AddPacketOptions>, RegExp][] = [
      [{ requires: ['Runtime'] }, /--requires Runtime: packet name 'Runtime' must match/],
      [{ requires: ['runtime@banana'] }, /--requires runtime@banana: 'banana' is not a semver range/],
      [{ requires: ['runtime@'] }, /is not a semver range/],
      [{ requires: ['logger@^1'] }, /a packet cannot require itself/],
      [{ timeoutSeconds: 0 }, /timeout 0 must be a whole number of seconds from 1 to 86400/],
      [{ timeoutSeconds: 1.5 }, /timeout 1\.5 must be/],
    ];
    for (const [extra, message] of cases) {
      const error = await refusal(options(src, fleet, extra));
      expect(error.code).toBe('invalid_manifest');
      expect(error.message).toMatch(message);
    }
  });

  it('refuses symlinks that leave SRC_DIR (directly, absolutely, dangling or through another link)', async () => {
    const outside = freshDir('outside');
    writeFileSync(join(outside, 'secret'), 'x');
    const fleet = newFleet();
    const cases: [(src: string) => void, RegExp][] = [
      [
        (src) => symlinkSync('../outside-x/secret', join(src, 'escape')),
        /^symlink escape -> \.\.\/outside-x\/secret points outside /,
      ],
      [
        (src) => symlinkSync('../../up', join(src, 'bin/up')),
        /^symlink bin\/up -> \.\.\/\.\.\/up points outside /,
      ],
      [
        (src) => symlinkSync(join(outside, 'secret'), join(src, 'abs')),
        /^symlink abs -> .* has an absolute target/,
      ],
      [
        (src) => symlinkSync('nowhere', join(src, 'dangling')),
        /^symlink dangling -> nowhere in .* does not resolve/,
      ],
      [
        (src) => {
          symlinkSync('.', join(src, 'here'));
          symlinkSync(`here/../${outside.split('/').pop()}/secret`, join(src, 'sneaky'));
        },
        /^symlink sneaky -> here\/\.\.\/outside-\d+\/secret points outside .* \(through another link\)$/,
      ],
    ];
    for (const [make, message] of cases) {
      const src = writeTree(sample);
      make(src);
      const error = await refusal(options(src, fleet));
      expect(error.code).toBe('invalid_manifest');
      expect(error.message).toMatch(message);
    }
    expect(existsSync(join(fleet, 'packets'))).toBe(false);
  });

  it('refuses fifos and sockets in SRC_DIR', async () => {
    const fleet = newFleet();
    const withFifo = writeTree(sample);
    execFileSync('mkfifo', [join(withFifo, 'etc/pipe')]);
    const fifo = await refusal(options(withFifo, fleet));
    expect(fifo.code).toBe('invalid_manifest');
    expect(fifo.message).toMatch(
      /^etc\/pipe in .* is a named pipe \(fifo\): an artifact holds only files, directories and symlinks$/,
    );

    const withSocket = writeTree(sample);
    const server = createServer();
    await new Promise<void>((done) => server.listen(join(withSocket, 'sock'), done));
    try {
      const socket = await refusal(options(withSocket, fleet));
      expect(socket.message).toMatch(/^sock in .* is a socket:/);
    } finally {
      await new Promise((done) => server.close(done));
    }
  });

  it('refuses a --dir without fleet.yaml and a missing SRC_DIR, writing nothing', async () => {
    const notFleet = freshDir('not-a-fleet');
    const error = await refusal(options(writeTree(sample), notFleet));
    expect(error.code).toBe('invalid_manifest');
    expect(error.message).toBe(
      `${notFleet} holds no fleet.yaml: not a fleet repository (\`gitfleet init\` writes one)`,
    );
    expect(readdirSync(notFleet)).toEqual([]);
    const missing = await refusal(options(join(tmp, 'no-such-dir'), newFleet()));
    expect(missing.message).toMatch(/no-such-dir does not exist$/);
  });
});

describe('gitfleet packet add (CLI)', () => {
  beforeAll(() => {
    ensureBuilt('packet/add');
  });

  interface AddJson {
    file: string;
    artifactPath: string;
    sha256: string;
    size: number;
    manifest: { artifact: { sha256: string; size: number } };
    error?: { code: string; message: string };
  }

  it('adds a packet that validate accepts and plan selects; --json refusals carry the code', async () => {
    const fleet = newFleet();
    mkdirSync(join(fleet, 'specs'));
    writeFileSync(
      join(fleet, 'specs/base.yaml'),
      'kind: Spec\nid: base\ntarget: { fleet: t }\napps:\n  - { name: logger, labels: { channel: stable }, version: ^1.0.0 }\n',
    );
    const src = writeTree(sample);
    const args = ['packet', 'add', src, '--name', 'logger', '--dir', fleet, '--install', 'install.sh'];
    const labels = ['--label', 'version=1.2.0', '--label', 'arch=arm64', '--label', 'channel=stable'];
    const added = runCliJson<AddJson>([...args, ...labels, '--timeout', '60']);
    expect(added.status).toBe(0);
    const result = added.json;
    expect(result.file).toBe('packets/logger/1.2.0.yaml');
    expect(sha256sum(result.artifactPath)).toBe(result.sha256);
    expect(result.manifest.artifact).toMatchObject({
      sha256: result.sha256,
      size: statSync(result.artifactPath).size,
    });
    expect(readFileSync(join(fleet, result.file), 'utf8')).toContain(`sha256: ${result.sha256}`);
    expect((await validateFleetSource(fleet)).ok).toBe(true);

    const plan = runCliJson<{ desired: { name: string; labels: Record<string, string> }[] }>([
      'plan',
      '--dir',
      fleet,
      '--label',
      'fleet=t',
      '--label',
      'arch=arm64',
    ]);
    expect(plan.status).toBe(0);
    expect(plan.json.desired).toMatchObject([
      { name: 'logger', labels: { arch: 'arm64', channel: 'stable', version: '1.2.0' } },
    ]);

    writeFileSync(join(src, 'install.sh'), '#!/bin/sh\necho changed\n');
    const refused = runCliJson<AddJson>([...args, ...labels]);
    expect(refused.status).toBe(1);
    expect(refused.json.error?.code).toBe('duplicate_packet');
    expect(refused.json.error?.message).toMatch(/already exists at packets\/logger\/1\.2\.0\.yaml/);
  });
});
