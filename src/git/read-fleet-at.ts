import git from 'isomorphic-git';
import type { Fleet } from '../schema/fleet.js';
import {
  assembleFleet,
  isFleetPath,
  parseFleetFile,
  type FileManifests,
  type ParseResult,
} from '../schema/parse-fleet.js';
import type { Problem } from '../schema/problem.js';
import { resolveCommit, type GitRepo } from './git-repo.js';

interface TreeFile {
  path: string;
  oid: string;
}

/**
 * What one reader remembers between reads: the fleet files of every tree it listed (by tree id) and the
 * parsed manifests of every file (by path and blob id). A read after a one-file change lists only the trees
 * on that file's path and parses only that file. Entries not used by the latest read are dropped.
 */
export interface FleetMemo {
  trees: Map<string, readonly TreeFile[]>;
  files: Map<string, FileManifests>;
  /** The latest read: a poll where nothing moved gets it back without any work. */
  last: FleetAtRevision | undefined;
}

export function createFleetMemo(): FleetMemo {
  return { trees: new Map(), files: new Map(), last: undefined };
}

const folders = new Set(['packets', 'specs', 'devices']);
/** Blobs read side by side on a cold read. */
const PARALLEL_READS = 16;

/** The fleet files under a tree, recursively; symbolic links and submodules are skipped as on disk. */
async function listTree(repo: GitRepo, oid: string, prefix: string, memo: FleetMemo, used: FleetMemo) {
  const known = memo.trees.get(oid);
  if (known) {
    used.trees.set(oid, known);
    return known;
  }
  const { tree } = await git.readTree({ fs: repo.fs, gitdir: repo.gitdir, oid, cache: repo.cache });
  const files: TreeFile[] = [];
  for (const entry of tree) {
    const path = prefix + entry.path;
    if (entry.type === 'tree' && (prefix !== '' || folders.has(entry.path))) {
      files.push(...(await listTree(repo, entry.oid, `${path}/`, memo, used)));
    } else if (entry.type === 'blob' && entry.mode !== '120000' && isFleetPath(path)) {
      files.push({ path, oid: entry.oid });
    }
  }
  used.trees.set(oid, files);
  return files;
}

/**
 * Problems located at `path@shortsha`, so a message says which revision it is about. Manifests keep
 * repository paths: relabelling 10,000 cached files on every read would cost more than the read.
 */
export function atRevision(problems: readonly Problem[], commit: string): Problem[] {
  const short = commit.slice(0, 7);
  return problems.map((p) =>
    p.location ? { ...p, location: { ...p.location, file: `${p.location.file}@${short}` } } : p,
  );
}

export interface FleetAtRevision {
  /** The full id of the commit read. */
  commit: string;
  result: ParseResult<Fleet>;
}

/**
 * Reads and parses the fleet at a revision straight from git objects (no checkout): `fleet.yaml` and the
 * YAML files under `packets/`, `specs/` and `devices/`. Problems read `path@shortsha:line:col` (the
 * manifests' own locations stay repository paths). Pass the
 * same `memo` to later reads of the same repository to parse only what changed.
 */
export async function readFleetAt(
  repo: GitRepo,
  rev: string,
  memo: FleetMemo = createFleetMemo(),
): Promise<FleetAtRevision> {
  const commit = await resolveCommit(repo, rev);
  if (memo.last?.commit === commit) return memo.last;
  const { commit: object } = await git.readCommit({
    fs: repo.fs,
    gitdir: repo.gitdir,
    oid: commit,
    cache: repo.cache,
  });
  const used = createFleetMemo();
  const files = await listTree(repo, object.tree, '', memo, used);
  const parse = async (file: TreeFile): Promise<FileManifests> => {
    const key = `${file.oid}\u0000${file.path}`;
    let part = memo.files.get(key);
    if (!part) {
      const { fs, gitdir, cache } = repo;
      const { blob } = await git.readBlob({ fs, gitdir, oid: file.oid, cache });
      part = parseFleetFile({ path: file.path, data: blob });
    }
    used.files.set(key, part);
    return part;
  };
  // Blob reads mostly wait on the file system: a few at a time keep the disk and the parser busy.
  const parts: FileManifests[] = [];
  for (let i = 0; i < files.length; i += PARALLEL_READS) {
    parts.push(...(await Promise.all(files.slice(i, i + PARALLEL_READS).map(parse))));
  }
  memo.trees = used.trees;
  memo.files = used.files;
  const parsed = assembleFleet(parts);
  const warnings = atRevision(parsed.warnings, commit);
  memo.last = {
    commit,
    result: parsed.ok
      ? { ...parsed, warnings }
      : { ok: false, errors: atRevision(parsed.errors, commit), warnings },
  };
  return memo.last;
}
