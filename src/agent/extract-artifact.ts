import { randomBytes } from 'node:crypto';
import { constants, createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, symlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { createGunzip } from 'node:zlib';
import { Parser, Unpack, type ReadEntry } from 'tar';
import { GitfleetError } from '../schema/gitfleet-error.js';
import { syncPath } from './write-file-atomic.js';

export interface ExtractLimits {
  /** Most bytes all entries together may hold (header sizes, so checked before anything is written). */
  maxBytes: number;
  /** Most entries (files, directories, links), not counting tar's own extended headers. */
  maxEntries: number;
}

const MiB = 1024 * 1024;

/**
 * The default `maxBytes` for an artifact of `size` bytes: 16 × size + 16 MiB. Software tarballs gzip
 * 2-8× (text-heavy ones a little more), so real artifacts stay well below it, while gzip can reach
 * ~1000×: a bomb is refused from its headers, before a byte of it reaches the disk.
 */
export function defaultMaxBytes(size: number): number {
  return 16 * size + 16 * MiB;
}

/** Enough for any packet we know of (a Node.js app with node_modules is ~50,000 files). */
export const defaultMaxEntries = 100_000;

export interface ExtractedArtifact {
  entries: number;
  bytes: number;
}

/** The entry kinds a slot may hold. */
type EntryType = 'File' | 'Directory' | 'SymbolicLink' | 'Link';

interface ArchiveEntry {
  /** As written in the archive: for messages. */
  name: string;
  /** Normalised: no `.` or empty components, no trailing slash; `''` is the slot itself. */
  path: string;
  type: EntryType;
  size: number;
  /** Mode to give the entry: the archive's, masked (see `maskMode`). */
  mode: number;
  /** Symbolic links: the target as written. Hard links: the normalised path of the linked entry. */
  linkpath: string;
}

/**
 * Extracts the tar.gz `file` (an artifact whose sha256 was verified) into the new slot `slotDir`, which
 * must not exist or be empty. Nothing half-extracted ever appears at `slotDir`:
 *
 * 1. The whole archive is read once without writing anything, and refused when any entry has an absolute
 *    path or a `..` component, is a device, fifo or other special file, lies below a symbolic link or a
 *    file, appears twice (directories excepted), is a hard link to anything but an earlier file of the
 *    archive, or is a symbolic link whose target (following the archive's other links) leaves the slot;
 *    when the entries hold more than `maxBytes` or number more than `maxEntries`; or when the gzip or tar
 *    data is corrupt.
 * 2. It is then unpacked with node-tar into a hidden sibling directory (the same entries, checked one by
 *    one against the first read): no chown, no mtimes, modes masked to `0o755` (no setuid, setgid or
 *    sticky bit, nothing group- or world-writable). Symbolic links are made last. Every file and
 *    directory is fsynced, then the directory is renamed to `slotDir`.
 *
 * On any failure the hidden directory is removed and `slotDir` is left as it was (absent or empty).
 * Refusals throw `GitfleetError('artifact_mismatch')` naming the entry; local I/O errors are rethrown.
 */
export async function extractArtifact(
  file: string,
  slotDir: string,
  limits: Partial<ExtractLimits> = {},
): Promise<ExtractedArtifact> {
  const archive = basename(file);
  const maxBytes = limits.maxBytes ?? defaultMaxBytes((await stat(file)).size);
  const maxEntries = limits.maxEntries ?? defaultMaxEntries;
  await checkSlotIsNew(slotDir);
  const entries = await scanArchive(file, { maxBytes, maxEntries });

  const parent = dirname(slotDir);
  await mkdir(parent, { recursive: true });
  await removeStaleStaging(parent, basename(slotDir));
  const staging = join(parent, `${stagingPrefix(basename(slotDir))}${randomBytes(6).toString('hex')}`);
  await mkdir(staging, { mode: 0o755 });
  try {
    await unpackArchive(file, staging, entries, { maxBytes, maxEntries });
    await settle(staging, entries);
    await rename(staging, slotDir);
    await syncPath(parent);
  } catch (error) {
    await rm(staging, { recursive: true, force: true, maxRetries: 5, retryDelay: 20 });
    throw error instanceof GitfleetError || !isTarError(error)
      ? error
      : refused(`${archive} could not be unpacked: ${(error as Error).message}`);
  }
  const files = entries.filter((entry) => entry.type === 'File');
  return { entries: entries.length, bytes: files.reduce((sum, entry) => sum + entry.size, 0) };
}

function refused(message: string): GitfleetError {
  return new GitfleetError('artifact_mismatch', `artifact refused: ${message}`, {
    hint: 'build artifacts with stock tar from a directory of plain files, directories and relative links',
  });
}

/** An entry name for a message: quoted, control characters escaped, long names shortened. */
function quote(name: string): string {
  return JSON.stringify(name.length > 200 ? `${name.slice(0, 200)}…` : name);
}

function entryRefused(name: string, why: string): GitfleetError {
  return refused(`entry ${quote(name)} ${why}`);
}

async function checkSlotIsNew(slotDir: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(slotDir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  if (names.length > 0) throw new Error(`slot directory ${slotDir} is not empty`);
}

const stagingPrefix = (slotName: string) => `.${slotName}.extracting-`;

/** Leftovers of an extraction into the same slot that was killed: never half-used, so just removed. */
async function removeStaleStaging(parent: string, slotName: string): Promise<void> {
  for (const name of await readdir(parent)) {
    if (name.startsWith(stagingPrefix(slotName)))
      await rm(join(parent, name), { recursive: true, force: true });
  }
}

function isTarError(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && code.startsWith('TAR_');
}

/** `''` for the slot itself, or the reason the path is refused. */
function normalizePath(raw: string): { path: string } | { refused: string } {
  if (raw.includes('\0')) return { refused: 'has a NUL byte in its path' };
  if (raw.startsWith('/')) return { refused: 'has an absolute path' };
  const parts = raw.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.includes('..')) return { refused: "has a '..' component" };
  return { path: parts.join('/') };
}

/** The slot's kind of entry, or why the archive's kind is refused. */
function entryType(type: ReadEntry['type']): { type: EntryType } | { refused: string } {
  switch (type) {
    case 'File':
    case 'OldFile':
    case 'ContiguousFile':
      return { type: 'File' };
    case 'Directory':
    case 'SymbolicLink':
    case 'Link':
      return { type };
    case 'CharacterDevice':
      return { refused: 'is a character device' };
    case 'BlockDevice':
      return { refused: 'is a block device' };
    case 'FIFO':
      return { refused: 'is a fifo' };
    default:
      return { refused: `has the unsupported type ${String(type)}` };
  }
}

/** Execute bits kept; no setuid, setgid or sticky bit; nothing group- or world-writable. */
function maskMode(type: EntryType, mode: number | undefined): number {
  if (type === 'Directory') return ((mode ?? 0o755) & 0o755) | 0o700;
  return (mode ?? 0o644) & 0o755;
}

/** Reads one entry's header into an `ArchiveEntry`, or throws the refusal. Links are checked later. */
function admitEntry(entry: ReadEntry): ArchiveEntry {
  const name = entry.path;
  const kind = entryType(entry.type);
  if ('refused' in kind) throw entryRefused(name, kind.refused);
  const { type } = kind;
  const normal = normalizePath(name);
  if ('refused' in normal) throw entryRefused(name, normal.refused);
  if (normal.path === '' && type !== 'Directory') throw entryRefused(name, 'would replace the slot itself');
  let linkpath = '';
  if (type === 'Link') {
    const target = normalizePath(entry.linkpath ?? '');
    if ('refused' in target) throw entryRefused(name, `is a hard link whose target ${target.refused}`);
    linkpath = target.path;
  } else if (type === 'SymbolicLink') {
    linkpath = entry.linkpath ?? '';
    if (linkpath === '' || linkpath.includes('\0'))
      throw entryRefused(name, 'is a symbolic link without a target');
    if (linkpath.startsWith('/')) {
      throw entryRefused(name, `is a symbolic link to ${quote(linkpath)}, outside the slot`);
    }
  }
  return { name, path: normal.path, type, size: entry.size, mode: maskMode(type, entry.mode), linkpath };
}

/** The checks that need the whole archive: what is below what, and where links lead. */
class SlotModel {
  private readonly byPath = new Map<string, ArchiveEntry>();

  /** Adds entries in archive order; throws on a duplicate or a hard link to something else than a file. */
  add(entry: ArchiveEntry): void {
    const known = this.byPath.get(entry.path);
    if (known && !(known.type === 'Directory' && entry.type === 'Directory')) {
      throw entryRefused(entry.name, 'appears twice in the archive');
    }
    if (entry.type === 'Link') {
      const target = this.byPath.get(entry.linkpath);
      if (target?.type !== 'File' && target?.type !== 'Link') {
        throw entryRefused(
          entry.name,
          `is a hard link to ${quote(entry.linkpath)}, which is no earlier file of the archive`,
        );
      }
    }
    this.byPath.set(entry.path, entry);
  }

  check(entries: readonly ArchiveEntry[]): void {
    for (const entry of entries) {
      const parts = entry.path.split('/');
      for (let depth = 1; depth < parts.length; depth++) {
        const above = this.byPath.get(parts.slice(0, depth).join('/'));
        if (above?.type === 'SymbolicLink') {
          throw entryRefused(entry.name, `lies below the symbolic link ${quote(above.name)}`);
        }
        if (above && above.type !== 'Directory')
          throw entryRefused(entry.name, `lies below the file ${quote(above.name)}`);
      }
      if (entry.type === 'SymbolicLink') {
        const escape = this.escapes(entry);
        if (escape) throw entryRefused(entry.name, escape);
      }
    }
  }

  /**
   * Follows a symbolic link's target through the archive's own links, as the kernel would once the slot
   * exists; components the archive does not hold are taken as plain directories.
   */
  private escapes(link: ArchiveEntry): string | undefined {
    const at = link.path.split('/').slice(0, -1);
    const pending = link.linkpath.split('/').reverse();
    let hops = 0;
    for (let part = pending.pop(); part !== undefined; part = pending.pop()) {
      if (part === '' || part === '.') continue;
      if (part === '..') {
        if (at.length === 0) return `is a symbolic link to ${quote(link.linkpath)}, outside the slot`;
        at.pop();
        continue;
      }
      at.push(part);
      const next = this.byPath.get(at.join('/'));
      if (next?.type !== 'SymbolicLink') continue;
      if (++hops > 40) return `is a symbolic link to ${quote(link.linkpath)}, which loops`;
      if (next.linkpath.startsWith('/'))
        return `is a symbolic link through ${quote(next.name)}, outside the slot`;
      at.pop();
      pending.push(...next.linkpath.split('/').reverse());
    }
    return undefined;
  }
}

interface Feed {
  /** The first refusal or error; feeding stops when it is set. */
  failure: unknown;
  /** Name of the entry being read, for messages about corrupt data. */
  current: string | undefined;
}

/**
 * Streams the gunzipped archive into `parser`, honouring its backpressure, and waits for it to finish.
 * The tar stream may not exceed `maxBytes` plus room for headers and padding: a backstop against
 * archives that are mostly headers, padding or data after the end-of-archive blocks.
 */
async function runParser(file: string, parser: Parser, feed: Feed, limits: ExtractLimits): Promise<void> {
  const budget = limits.maxBytes + limits.maxEntries * 2048 + MiB;
  const fail = (error: unknown) => {
    feed.failure ??= error;
  };
  let sawEof = false;
  const finished = new Promise<void>((resolve) => {
    parser.on('error', (error: unknown) => {
      fail(error);
      resolve();
    });
    parser.on('end', resolve);
  });
  parser.on('eof', () => (sawEof = true));
  const source = createReadStream(file);
  const gunzip = createGunzip();
  source.on('error', (error) => gunzip.destroy(error));
  source.pipe(gunzip);
  let total = 0;
  try {
    for await (const chunk of gunzip as AsyncIterable<Buffer>) {
      if (feed.failure !== undefined) break;
      if (total === 0 && (chunk[0] === 0x1f || chunk[0] === 0x28)) {
        // Only gzip is undone here: node-tar would also gunzip (or zstd-decompress) a second layer.
        if ((chunk[0] === 0x1f && chunk[1] === 0x8b) || chunk.subarray(0, 4).equals(zstdMagic)) {
          fail(refused(`${basename(file)} holds compressed data inside its gzip stream, not a tar archive`));
          break;
        }
      }
      total += chunk.length;
      if (total > budget) {
        fail(refused(`${basename(file)} expands to more than ${budget} bytes of tar data`));
        break;
      }
      // After the end-of-archive blocks the rest is only checked as gzip (node-tar would buffer it).
      if (sawEof) continue;
      if (!parser.write(chunk)) await drained(parser);
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const inEntry = feed.current === undefined ? '' : ` (in entry ${quote(feed.current)})`;
    // zlib's codes are Z_DATA_ERROR, Z_BUF_ERROR (truncated) and so on; others are local I/O errors.
    fail(
      code?.startsWith('Z_')
        ? refused(`${basename(file)} is not a valid gzip stream: ${(error as Error).message}${inEntry}`)
        : error,
    );
  } finally {
    source.destroy();
    gunzip.destroy();
  }
  if (feed.failure !== undefined) {
    parser.abort(new Error('stopped'));
    return;
  }
  parser.end();
  await finished; // on 'error' the failure is set
}

const zstdMagic = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);

function drained(parser: Parser): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      parser.off('drain', done);
      parser.off('error', done);
      parser.off('end', done);
      resolve();
    };
    parser.on('drain', done);
    parser.on('error', done);
    parser.on('end', done);
  });
}

/** Throws the feed's failure: node-tar's complaints about the archive as refusals, the rest as is. */
function rethrow(file: string, feed: Feed): void {
  if (feed.failure === undefined) return;
  if (feed.failure instanceof GitfleetError) throw feed.failure;
  const error = feed.failure as Error;
  if (!isTarError(error)) throw error;
  const entry = feed.current === undefined ? '' : ` (in entry ${quote(feed.current)})`;
  throw refused(`${basename(file)} is not a tar archive that can be unpacked: ${error.message}${entry}`);
}

/** Pass 1: reads every header, writing nothing; returns the entries in archive order or throws. */
async function scanArchive(file: string, limits: ExtractLimits): Promise<ArchiveEntry[]> {
  const entries: ArchiveEntry[] = [];
  const model = new SlotModel();
  const feed: Feed = { failure: undefined, current: undefined };
  let bytes = 0;
  const parser = new Parser({ strict: true, brotli: false, zstd: false });
  parser.on('entry', (entry: ReadEntry) => {
    entry.resume();
    if (feed.failure !== undefined) return;
    feed.current = entry.path;
    try {
      if (entries.length >= limits.maxEntries) {
        throw refused(`more than ${limits.maxEntries} entries (at ${quote(entry.path)})`);
      }
      bytes += entry.size;
      if (bytes > limits.maxBytes) {
        throw entryRefused(entry.path, `takes the archive over ${limits.maxBytes} bytes`);
      }
      const admitted = admitEntry(entry);
      model.add(admitted);
      entries.push(admitted);
    } catch (error) {
      feed.failure ??= error;
    }
  });
  parser.on('ignoredEntry', (entry: ReadEntry) => {
    const kind = entryType(entry.type);
    const why = entry.meta || !('refused' in kind) ? 'has an oversized extended header' : kind.refused;
    feed.failure ??= entryRefused(entry.path, why);
  });
  await runParser(file, parser, feed, limits);
  rethrow(file, feed);
  model.check(entries);
  return entries;
}

/** Whether pass 2 reads the entry pass 1 admitted (the file is ours, so only a bug or tampering differ). */
function sameEntry(entry: ReadEntry, expected: ArchiveEntry | undefined): expected is ArchiveEntry {
  try {
    const again = admitEntry(entry);
    return (
      expected !== undefined &&
      again.name === expected.name &&
      again.type === expected.type &&
      again.size === expected.size &&
      again.linkpath === expected.linkpath
    );
  } catch {
    return false;
  }
}

/** Pass 2: node-tar writes the entries pass 1 admitted, and nothing else. */
async function unpackArchive(
  file: string,
  staging: string,
  entries: readonly ArchiveEntry[],
  limits: ExtractLimits,
): Promise<void> {
  const feed: Feed = { failure: undefined, current: undefined };
  let index = 0;
  const unpack = new Unpack({
    cwd: staging,
    strict: true,
    brotli: false,
    zstd: false,
    preserveOwner: false,
    noMtime: true,
    fmode: 0o644,
    dmode: 0o755,
    filter: (_path, read) => {
      const entry = read as ReadEntry;
      const expected = entries[index++];
      feed.current = entry.path;
      if (feed.failure !== undefined) return false;
      if (!sameEntry(entry, expected)) {
        feed.failure = refused(
          `${basename(file)} changed while it was being extracted (at ${quote(entry.path)})`,
        );
        return false;
      }
      // node-tar refuses a link to a link (libfoo.so -> libfoo.so.1 -> ...); they are made below.
      if (expected.type === 'SymbolicLink') return false;
      entry.path = expected.path === '' ? '.' : expected.path;
      if (expected.type === 'Link') entry.linkpath = expected.linkpath;
      entry.mode = expected.mode;
      return true;
    },
  });
  await runParser(file, unpack, feed, limits);
  rethrow(file, feed);
  if (index !== entries.length) {
    throw refused(
      `${basename(file)} changed while it was being extracted (${index} of ${entries.length} entries)`,
    );
  }
  // Last, so nothing is ever written through one; pass 1 checked where each leads.
  for (const entry of entries) {
    if (entry.type !== 'SymbolicLink') continue;
    const at = join(staging, entry.path);
    await mkdir(dirname(at), { recursive: true, mode: 0o755 });
    await symlink(entry.linkpath, at);
  }
}

/**
 * Gives every file and directory its masked mode exactly (the process umask does not matter) and
 * fsyncs it, so a power cut after the slot is switched to cannot leave empty files behind.
 */
async function settle(root: string, entries: readonly ArchiveEntry[]): Promise<void> {
  const modes = new Map<string, number>([['', 0o755]]);
  for (const entry of entries) {
    const parts = entry.path.split('/');
    for (let depth = 1; depth < parts.length; depth++) {
      const dir = parts.slice(0, depth).join('/');
      if (!modes.has(dir)) modes.set(dir, 0o755);
    }
    if (entry.type === 'File' || (entry.type === 'Directory' && entry.path !== ''))
      modes.set(entry.path, entry.mode);
  }
  const paths = [...modes.keys()];
  const worker = async () => {
    for (let path = paths.pop(); path !== undefined; path = paths.pop()) {
      const handle = await open(join(root, path), constants.O_RDONLY | constants.O_NOFOLLOW);
      try {
        await handle.chmod(modes.get(path) ?? 0o755);
        await handle.sync();
      } finally {
        await handle.close();
      }
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
}
