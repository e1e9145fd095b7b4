import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import git, { type HttpClient } from 'isomorphic-git';
import type { GitRepo } from './git-repo.js';
import { collectBody, replay } from './http-client.js';

/** Adds `thin-pack` to the capabilities on the first `want` line of an upload-pack request. */
export function withThinPackCapability(request: Buffer): Buffer {
  const length = Number.parseInt(request.subarray(0, 4).toString('latin1'), 16);
  const line = request.subarray(4, length).toString('latin1');
  if (!Number.isInteger(length) || length < 50 || !line.startsWith('want ') || line.includes(' thin-pack')) {
    return request;
  }
  const patched = line.replace(/\n?$/, ' thin-pack\n');
  const header = (patched.length + 4).toString(16).padStart(4, '0');
  return Buffer.concat([Buffer.from(header + patched, 'latin1'), request.subarray(length)]);
}

/**
 * An HTTP client that asks upload-pack for a thin pack: objects may come as deltas against objects we
 * already have, so a one-file change costs about what it costs stock git. isomorphic-git leaves this
 * capability out because it does not complete such packs; `completeThinPacks` does that after the fetch.
 */
export function requestThinPacks(http: HttpClient): HttpClient {
  return {
    async request(request) {
      if (request.method !== 'POST' || !request.url.endsWith('/git-upload-pack'))
        return http.request(request);
      const body = withThinPackCapability((await collectBody(request.body)) ?? Buffer.alloc(0));
      return http.request({ ...request, body: replay([body]) });
    },
  };
}

/** The pack files in the repository. */
export async function listPacks(repo: GitRepo): Promise<Set<string>> {
  const names = await readdir(join(repo.gitdir, 'objects', 'pack')).catch(() => []);
  return new Set(names.filter((n) => n.endsWith('.pack')));
}

/** Object ids listed in a version 2 pack index. */
function idsInIndex(idx: Buffer): string[] {
  if (idx.readUInt32BE(0) !== 0xff744f63 || idx.readUInt32BE(4) !== 2) throw new Error('not a v2 pack index');
  const count = idx.readUInt32BE(8 + 255 * 4);
  const start = 8 + 256 * 4;
  return Array.from({ length: count }, (_, i) =>
    idx.subarray(start + i * 20, start + (i + 1) * 20).toString('hex'),
  );
}

/** Up to this many objects, a completed pack is stored as loose objects (cheaper than a new pack). */
const MAX_LOOSE = 1_000;

/**
 * Rewrites every pack that appeared since `before` as self-contained objects, as `git index-pack
 * --fix-thin` would: isomorphic-git reads thin packs, stock git (fsck, log, gc) does not. The objects are
 * read through the repository (bases resolved from older packs) and written whole, as loose objects for a
 * small fetch or as a new pack for a large one; then the thin pack is removed.
 */
export async function completeThinPacks(repo: GitRepo, before: ReadonlySet<string>): Promise<void> {
  const { fs, gitdir, cache } = repo;
  for (const name of await listPacks(repo)) {
    if (before.has(name)) continue;
    const base = join(gitdir, 'objects', 'pack', name.replace(/\.pack$/, ''));
    const oids = idsInIndex(await readFile(`${base}.idx`));
    if (oids.length <= MAX_LOOSE) {
      for (const oid of oids) {
        const { type, object } = await git.readObject({ fs, gitdir, oid, format: 'content', cache });
        await git.writeObject({
          fs,
          gitdir,
          type: type as 'blob' | 'tree' | 'commit' | 'tag',
          object,
          format: 'content',
        });
      }
    } else {
      const { filename } = await git.packObjects({ fs, gitdir, oids, write: true, cache });
      await git.indexPack({ fs, dir: gitdir, gitdir, filepath: join('objects', 'pack', filename), cache });
    }
    await rm(`${base}.pack`);
    await rm(`${base}.idx`);
  }
}
