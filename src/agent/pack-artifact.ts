import { createHash } from 'node:crypto';
import type { Stats } from 'node:fs';
import { createWriteStream } from 'node:fs';
import { lstat, readdir, readlink, realpath, rm, stat } from 'node:fs/promises';
import { isAbsolute, join, resolve, posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Pack } from 'tar';
import { GitfleetError } from '../schema/gitfleet-error.js';
import { isInside } from './is-inside.js';
import { syncPath } from './write-file-atomic.js';

/** The kinds of entry an artifact holds; anything else in a source directory is refused. */
export type ArtifactEntryType = 'file' | 'directory' | 'symlink';

/** One entry of an artifact, as it is stored in the archive. */
export interface ArtifactEntry {
  /** `/`-separated path inside the artifact, without `./` and without a trailing `/`. */
  path: string;
  type: ArtifactEntryType;
  /** The stored permission bits: 0o755 or 0o644 for files (by the owner's executable bit), else 0o755. */
  mode: number;
  /** Bytes of a file; 0 for directories and symlinks. */
  size: number;
  /** A symlink's target exactly as stored: relative, and resolving inside the artifact. */
  linkpath?: string;
}

/** A source directory, checked and listed in archive order. */
export interface SourceTree {
  /** The real path of the source directory. */
  root: string;
  /** Every entry, sorted by archive name (UTF-8 byte order; a directory's name ends in `/`). */
  entries: readonly ArtifactEntry[];
  /** lstat results by absolute path, normalised as they are archived. */
  stats: ReadonlyMap<string, Stats>;
}

export interface PackedArtifact {
  /** Lowercase hex sha256 of the `.tar.gz` bytes. */
  sha256: string;
  /** Bytes of the `.tar.gz`. */
  size: number;
  entries: readonly ArtifactEntry[];
}

const S_IFMT = 0o170000;

/** The gzip level of every artifact: packed once, downloaded by every device. */
export const artifactGzipLevel = 9;

function refuse(message: string): never {
  throw new GitfleetError('invalid_manifest', message);
}

/** The name an entry has in the archive; the sort key of the archive. */
function archiveName(entry: ArtifactEntry): string {
  return entry.type === 'directory' ? `${entry.path}/` : entry.path;
}

function compareArchiveNames(a: ArtifactEntry, b: ArtifactEntry): number {
  return Buffer.compare(Buffer.from(archiveName(a)), Buffer.from(archiveName(b)));
}

function describeSpecial(stat: Stats): string {
  if (stat.isFIFO()) return 'a named pipe (fifo)';
  if (stat.isSocket()) return 'a socket';
  if (stat.isCharacterDevice()) return 'a character device';
  if (stat.isBlockDevice()) return 'a block device';
  return 'not a file, directory or symlink';
}

/**
 * Checks that a symlink stays inside the source directory both as written (so it stays inside the slot
 * it is extracted to) and as the file system resolves it (through other links). A dangling link cannot be
 * shown to stay inside and is refused too.
 */
async function checkSymlink(srcDir: string, root: string, path: string, target: string): Promise<void> {
  const shown = `symlink ${path} -> ${target}`;
  if (posix.isAbsolute(target) || isAbsolute(target))
    refuse(`${shown} in ${srcDir} has an absolute target: links in an artifact must be relative`);
  const lexical = posix.normalize(posix.join(posix.dirname(path), target));
  if (lexical === '..' || lexical.startsWith('../')) refuse(`${shown} points outside ${srcDir}`);
  const real = await realpath(join(root, path)).catch(() =>
    refuse(`${shown} in ${srcDir} does not resolve (dangling or a loop)`),
  );
  if (!isInside(root, real)) refuse(`${shown} points outside ${srcDir} (through another link)`);
}

/**
 * Lists and checks the source directory of an artifact, without following symlinks. Refuses (with
 * `invalid_manifest`) devices, fifos and sockets, and symlinks that are absolute, dangling or point outside
 * `srcDir`. Hard links are listed as the regular files they are. Modes are normalised here: a file is 0o755
 * when its owner may execute it, else 0o644; directories and symlinks are 0o755.
 */
export async function scanSource(srcDir: string): Promise<SourceTree> {
  const info = await stat(srcDir).catch(() => refuse(`${srcDir} does not exist`));
  if (!info.isDirectory()) refuse(`${srcDir} is not a directory`);
  const root = await realpath(srcDir);
  const entries: ArtifactEntry[] = [];
  const stats = new Map<string, Stats>();
  const walk = async (dir: string): Promise<void> => {
    for (const name of await readdir(join(root, dir))) {
      const path = dir === '' ? name : `${dir}/${name}`;
      const absolute = resolve(root, path);
      const info = await lstat(absolute);
      let entry: ArtifactEntry;
      if (info.isDirectory()) {
        entry = { path, type: 'directory', mode: 0o755, size: 0 };
      } else if (info.isFile()) {
        entry = { path, type: 'file', mode: info.mode & 0o100 ? 0o755 : 0o644, size: info.size };
      } else if (info.isSymbolicLink()) {
        const linkpath = await readlink(absolute);
        await checkSymlink(srcDir, root, path, linkpath);
        entry = { path, type: 'symlink', mode: 0o755, size: 0, linkpath };
      } else {
        refuse(
          `${path} in ${srcDir} is ${describeSpecial(info)}: an artifact holds only files, directories and symlinks`,
        );
      }
      // node-tar archives from these stats: one normalised mode, and nlink 1 so that a hard link is
      // stored as the regular file it is (a Link entry would depend on which name was met first).
      info.mode = (info.mode & S_IFMT) | entry.mode;
      info.nlink = 1;
      stats.set(absolute, info);
      entries.push(entry);
      if (entry.type === 'directory') await walk(path);
    }
  };
  await walk('');
  return { root, entries: entries.sort(compareArchiveNames), stats };
}

/**
 * Packs `srcDir` into a reproducible `.tar.gz` at `outFile` (created, never overwritten; fsynced), streaming
 * through sha256 so that artifacts of any size take constant memory. On failure `outFile` is removed.
 *
 * Reproducible: the same entries, bytes and owner-executable bits give the same `.tar.gz` on any machine
 * with the same deflate engine (Node's bundled zlib). Entries are sorted by name and include directories;
 * no mtime, atime, ctime, uid, gid, uname or gname is stored (the ustar fields are left empty, which tar
 * readers show as 0 and 1970-01-01); modes are normalised (see `scanSource`); pax headers appear only for
 * long names and carry a path, linkpath and size, never a time; the gzip header has mtime 0, a fixed level
 * and OS byte 255. Hard links are stored as regular files, symlinks as symlinks.
 *
 * `tree` may be a `scanSource(srcDir)` result already made (to check hooks against it first).
 */
export async function packArtifact(
  srcDir: string,
  outFile: string,
  tree?: SourceTree,
): Promise<PackedArtifact> {
  const source = tree ?? (await scanSource(srcDir));
  const linkpaths = new Map(
    source.entries.flatMap((e) =>
      e.linkpath === undefined ? [] : [[resolve(source.root, e.path), e.linkpath] as const],
    ),
  );
  // Pack rather than `create`: `create` reads a path that starts with `@` as a tar file to append.
  const pack = new Pack({
    cwd: source.root,
    portable: true,
    noMtime: true,
    noDirRecurse: true,
    strict: true,
    gzip: { level: artifactGzipLevel },
    // Archive exactly what was checked: no second lstat, and the link target that was checked.
    statCache: new Map(source.stats),
    onWriteEntry: (entry) => {
      const checked = linkpaths.get(entry.absolute);
      if (checked !== undefined) entry.linkpath = checked;
    },
  });
  for (const entry of source.entries) pack.add(entry.path);
  pack.end();

  const hash = createHash('sha256');
  let size = 0;
  try {
    await pipeline(
      pack,
      async function* (chunks: AsyncIterable<Buffer>) {
        for await (const chunk of chunks) {
          hash.update(chunk);
          size += chunk.length;
          yield chunk;
        }
      },
      createWriteStream(outFile, { flags: 'wx', mode: 0o644 }),
    );
    await syncPath(outFile);
  } catch (error) {
    await rm(outFile, { force: true });
    throw error;
  }
  return { sha256: hash.digest('hex'), size, entries: source.entries };
}
