import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { extractArtifact } from '../src/agent/extract-artifact.js';
import { GitfleetError } from '../src/schema/gitfleet-error.js';

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'gitfleet-extract-'));
});
afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

/** A fresh parent directory per test, so leftovers are easy to see; the slot does not exist yet. */
function newSlot(): { parent: string; slot: string } {
  const parent = mkdtempSync(join(work, 'slots-'));
  return { parent, slot: join(parent, 'slot') };
}

/** A tar.gz made by stock GNU tar from `dir`, as a packet author would. */
function stockTar(dir: string): string {
  const file = join(work, `${randomBytes(4).toString('hex')}.tar.gz`);
  execFileSync('tar', ['-czf', file, '-C', dir, '.']);
  return file;
}

interface CraftedEntry {
  name: string;
  type?: 'file' | 'dir' | 'symlink' | 'hardlink' | 'chr' | 'blk' | 'fifo';
  data?: string;
  /** A file of this many zero bytes (compresses about 1000:1). */
  zeros?: number;
  link?: string;
  mode?: number;
  uid?: number;
}

/** Python's tarfile writes any entry we ask for (devices, `..`, absolute names) without root. */
const craftScript = `
import io, json, sys, tarfile
types = {'file': tarfile.REGTYPE, 'dir': tarfile.DIRTYPE, 'symlink': tarfile.SYMTYPE, 'hardlink': tarfile.LNKTYPE,
         'chr': tarfile.CHRTYPE, 'blk': tarfile.BLKTYPE, 'fifo': tarfile.FIFOTYPE}
class Zeros(io.RawIOBase):
    def __init__(self, n): self.left = n
    def readable(self): return True
    def readinto(self, b):
        n = min(len(b), self.left); b[:n] = bytes(n); self.left -= n; return n
for path, entries in json.load(sys.stdin).items():
  with tarfile.open(path, 'w:gz', format=tarfile.GNU_FORMAT, compresslevel=6) as tar:
    for e in entries:
        info = tarfile.TarInfo(e['name'])
        info.type = types[e.get('type', 'file')]
        info.mode = e.get('mode', 0o755 if info.type == tarfile.DIRTYPE else 0o644)
        info.uid = e.get('uid', 0)
        info.mtime = 1700000000
        info.linkname = e.get('link', '')
        if info.type in (tarfile.CHRTYPE, tarfile.BLKTYPE): info.devmajor, info.devminor = 1, 3
        data = None
        if info.type == tarfile.REGTYPE:
            if 'zeros' in e:
                info.size = e['zeros']; data = io.BufferedReader(Zeros(e['zeros']))
            else:
                content = e.get('data', '').encode(); info.size = len(content); data = io.BytesIO(content)
        tar.addfile(info, data)
`;

const crafted = new Map<string, string>();

/** Writes every archive in one run of Python (starting it costs more than the archives). */
function craftTars(specs: Record<string, CraftedEntry[]>): void {
  const byPath: Record<string, CraftedEntry[]> = {};
  for (const [key, entries] of Object.entries(specs)) {
    const file = join(work, `crafted-${crafted.size}.tar.gz`);
    crafted.set(key, file);
    byPath[file] = entries;
  }
  execFileSync('python3', ['-c', craftScript], { input: JSON.stringify(byPath) });
}

function craftedTar(key: string): string {
  const file = crafted.get(key);
  if (!file) throw new Error(`no crafted archive ${key}`);
  return file;
}

/** [title, entries after a harmless first one, the entry to be named, a word of the reason]. */
const refusals: [string, CraftedEntry[], string, string][] = [
  ['a .. path', [{ name: '../x', data: 'x' }], '../x', "'..'"],
  ['a .. path inside', [{ name: 'a/../../x', data: 'x' }], 'a/../../x', "'..'"],
  ['an absolute path', [{ name: '/gitfleet-slip-test', data: 'x' }], '/gitfleet-slip-test', 'absolute'],
  [
    'a file through a symlink to /etc',
    [
      { name: 'etc', type: 'symlink', link: '/etc' },
      { name: 'etc/gitfleet-slip-test', data: 'x' },
    ],
    'etc',
    'outside the slot',
  ],
  ['a symlink out of the slot', [{ name: 'sub/up', type: 'symlink', link: '../../x' }], 'sub/up', 'outside'],
  [
    'a symlink out of the slot through another link',
    [
      { name: 's1', type: 'symlink', link: '.' },
      { name: 's2', type: 'symlink', link: 's1/..' },
    ],
    's2',
    'outside the slot',
  ],
  [
    'a file below a symlink inside the slot',
    [
      { name: 'd', type: 'dir' },
      { name: 'l', type: 'symlink', link: 'd' },
      { name: 'l/x', data: 'x' },
    ],
    'l/x',
    'below the symbolic link',
  ],
  [
    'a hard link out of the slot',
    [{ name: 'h', type: 'hardlink', link: '../outside' }],
    'h',
    "target has a '..' component",
  ],
  ['a hard link to /etc/passwd', [{ name: 'h', type: 'hardlink', link: '/etc/passwd' }], 'h', 'absolute'],
  [
    'a hard link to a later file',
    [
      { name: 'h', type: 'hardlink', link: 'f' },
      { name: 'f', data: 'x' },
    ],
    'h',
    'no earlier file',
  ],
  [
    'a hard link to a symlink',
    [
      { name: 'l', type: 'symlink', link: 'f' },
      { name: 'h', type: 'hardlink', link: 'l' },
    ],
    'h',
    'no earlier file',
  ],
  ['a character device', [{ name: 'dev/null', type: 'chr' }], 'dev/null', 'character device'],
  ['a block device', [{ name: 'dev/sda', type: 'blk' }], 'dev/sda', 'block device'],
  ['a fifo', [{ name: 'pipe', type: 'fifo' }], 'pipe', 'fifo'],
  [
    'a duplicate file',
    [
      { name: 'a', data: '1' },
      { name: 'a', data: '2' },
    ],
    'a',
    'twice',
  ],
  [
    'an entry below a file',
    [
      { name: 'f', data: '1' },
      { name: 'f/x', data: '2' },
    ],
    'f/x',
    'below the file',
  ],
];

beforeAll(() => {
  craftTars({
    ...Object.fromEntries(
      refusals.map(([title, entries]) => [title, [{ name: 'ok.txt', data: 'fine' }, ...entries]]),
    ),
    owners: [
      { name: 'opt', type: 'dir', mode: 0o1777, uid: 4242 },
      { name: 'opt/run', data: 'x', mode: 0o6755, uid: 4242 },
    ],
    bomb: [
      { name: 'ok.txt', data: 'fine' },
      { name: 'bomb.bin', zeros: 64 * 1024 * 1024 },
    ],
    many: Array.from({ length: 30 }, (_, i) => ({ name: `f${i}`, data: `${i}` })),
    simple: [{ name: 'a', data: 'new' }],
  });
});

async function refusal(promise: Promise<unknown>): Promise<GitfleetError> {
  const error: unknown = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(GitfleetError);
  expect((error as GitfleetError).code).toBe('artifact_mismatch');
  return error as GitfleetError;
}

const mode = (path: string) => statSync(path).mode & 0o7777;

describe('extractArtifact', () => {
  it('extracts an artifact made with stock tar: files, modes, links', async () => {
    const src = mkdtempSync(join(work, 'src-'));
    writeFileSync(join(src, 'install.sh'), '#!/bin/sh\necho installed\n', { mode: 0o755 });
    mkdirSync(join(src, 'data'));
    writeFileSync(join(src, 'data/config.json'), '{"level":"info"}\n', { mode: 0o644 });
    writeFileSync(join(src, 'data/secret'), 'token\n', { mode: 0o600 });
    linkSync(join(src, 'data/config.json'), join(src, 'data/config-copy.json'));
    symlinkSync('config.json', join(src, 'data/current'));
    mkdirSync(join(src, 'lib'));
    writeFileSync(join(src, 'lib/libfoo.so.1.2.3'), 'ELF');
    symlinkSync('libfoo.so.1.2.3', join(src, 'lib/libfoo.so.1'));
    symlinkSync('libfoo.so.1', join(src, 'lib/libfoo.so'));
    mkdirSync(join(src, 'bin'));
    writeFileSync(join(src, 'bin/tool'), 'tool');
    chmodSync(join(src, 'bin/tool'), 0o4755);
    mkdirSync(join(src, 'shared'));
    chmodSync(join(src, 'shared'), 0o1777);
    const { parent, slot } = newSlot();

    const result = await extractArtifact(stockTar(src), slot);

    expect(result.entries).toBe(14); // with ./
    expect(readFileSync(join(slot, 'install.sh'), 'utf8')).toBe('#!/bin/sh\necho installed\n');
    expect(mode(join(slot, 'install.sh'))).toBe(0o755);
    expect(mode(join(slot, 'data/config.json'))).toBe(0o644);
    expect(mode(join(slot, 'data/secret'))).toBe(0o600);
    expect(mode(join(slot, 'bin/tool'))).toBe(0o755); // no setuid
    expect(mode(join(slot, 'shared'))).toBe(0o755); // no sticky bit, not world-writable
    expect(statSync(join(slot, 'data/config-copy.json')).ino).toBe(
      statSync(join(slot, 'data/config.json')).ino,
    );
    expect(readlinkSync(join(slot, 'data/current'))).toBe('config.json');
    expect(readlinkSync(join(slot, 'lib/libfoo.so'))).toBe('libfoo.so.1');
    expect(readFileSync(join(slot, 'lib/libfoo.so'), 'utf8')).toBe('ELF');
    expect(readdirSync(parent)).toEqual(['slot']);
  });

  it('extracts into an existing empty slot, without owners, setuid or sticky bits from the archive', async () => {
    const file = craftedTar('owners');
    const { slot } = newSlot();
    mkdirSync(slot);
    await extractArtifact(file, slot);
    expect(mode(join(slot, 'opt'))).toBe(0o755);
    expect(mode(join(slot, 'opt/run'))).toBe(0o755);
    expect(statSync(join(slot, 'opt/run')).uid).toBe(process.getuid?.());
  });

  it.each(refusals)(
    'refuses %s, naming the entry and leaving nothing behind',
    async (title, _entries, name, why) => {
      const file = craftedTar(title);
      const { parent, slot } = newSlot();
      const error = await refusal(extractArtifact(file, slot));
      expect(error.message).toContain(`entry ${JSON.stringify(name)}`);
      expect(error.message).toContain(why);
      expect(readdirSync(parent)).toEqual([]);
      expect(existsSync('/gitfleet-slip-test')).toBe(false);
      expect(existsSync('/etc/gitfleet-slip-test')).toBe(false);
    },
  );

  it('refuses a gzip bomb from its headers, with the default limit', async () => {
    const file = craftedTar('bomb');
    expect(statSync(file).size).toBeLessThan(1024 * 1024);
    const { parent, slot } = newSlot();
    const error = await refusal(extractArtifact(file, slot));
    expect(error.message).toContain('entry "bomb.bin" takes the archive over');
    expect(readdirSync(parent)).toEqual([]);
  });

  it('refuses more entries than maxEntries', async () => {
    const file = craftedTar('many');
    const { parent, slot } = newSlot();
    const error = await refusal(extractArtifact(file, slot, { maxEntries: 20 }));
    expect(error.message).toContain('more than 20 entries (at "f20")');
    expect(readdirSync(parent)).toEqual([]);
  });

  it('refuses a truncated gzip stream, naming the entry it was reading', async () => {
    const src = mkdtempSync(join(work, 'src-'));
    writeFileSync(join(src, 'readme.txt'), 'hello\n');
    writeFileSync(join(src, 'big.bin'), randomBytes(512 * 1024));
    const whole = readFileSync(stockTar(src));
    const file = join(work, 'truncated.tar.gz');
    writeFileSync(file, whole.subarray(0, Math.floor(whole.length / 2)));
    const { parent, slot } = newSlot();
    const error = await refusal(extractArtifact(file, slot));
    expect(error.message).toContain('not a valid gzip stream');
    expect(error.message).toContain('"./big.bin"');
    expect(readdirSync(parent)).toEqual([]);
  });

  it('refuses a file that is not gzip-compressed, and gzip-compressed data that is not tar', async () => {
    const plain = join(work, 'plain.bin');
    writeFileSync(plain, randomBytes(4096));
    const { parent, slot } = newSlot();
    expect((await refusal(extractArtifact(plain, slot))).message).toContain('not a valid gzip stream');

    const notTar = join(work, 'not-tar.gz');
    writeFileSync(notTar, gzipSync(randomBytes(4096)));
    expect((await refusal(extractArtifact(notTar, slot))).message).toContain('is not a tar archive');
    expect(readdirSync(parent)).toEqual([]);
  });

  it('refuses a slot that is not empty, and removes leftovers of a killed extraction', async () => {
    const file = craftedTar('simple');
    const { parent, slot } = newSlot();
    mkdirSync(slot);
    writeFileSync(join(slot, 'keep'), 'old');
    await expect(extractArtifact(file, slot)).rejects.toThrow('is not empty');
    expect(readdirSync(slot)).toEqual(['keep']);

    rmSync(slot, { recursive: true });
    mkdirSync(join(parent, '.slot.extracting-0123456789ab/half'), { recursive: true });
    await extractArtifact(file, slot);
    expect(readdirSync(parent)).toEqual(['slot']);
    expect(readFileSync(join(slot, 'a'), 'utf8')).toBe('new');
  });
});
