/**
 * `npm run bench:read`: reading a 10,000-file fleet at a revision straight from git objects (list, read,
 * parse), cold and after a one-file change, against stock git listing and reading the same tree
 * (`git ls-tree -r` + `git cat-file --batch`, bytes only, no parsing).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openRepo } from '../src/git/git-repo.js';
import { createFleetMemo, readFleetAt } from '../src/git/read-fleet-at.js';
import { git, makeSigningKey } from '../test/support/git-fixture.js';
import { buildFleetRepo, fleetFiles } from './fleet-repo.js';
import { median, timed } from './measure.js';

const SEED = 20_240_601;
const RUNS = 3;

const work = mkdtempSync(join(tmpdir(), 'gitfleet-bench-read-'));
try {
  const dir = join(work, 'fleet');
  const key = makeSigningKey(work, 'bench');
  const { files } = fleetFiles(SEED);
  buildFleetRepo(dir, files, 50, key);
  git(dir, ['gc', '-q']);

  const stockRead = () => {
    const listing = execFileSync('git', ['ls-tree', '-r', 'HEAD'], {
      cwd: dir,
      maxBuffer: 1 << 28,
      encoding: 'utf8',
    });
    const ids = listing
      .split('\n')
      .filter((line) => line.includes(' blob '))
      .map((line) => line.split(/\s+/)[2])
      .join('\n');
    return execFileSync('git', ['cat-file', '--batch'], { cwd: dir, input: `${ids}\n`, maxBuffer: 1 << 30 });
  };
  const stock: number[] = [];
  const cold: number[] = [];
  const incremental: number[] = [];
  let fileCount = 0;
  for (let run = 0; run < RUNS; run++) {
    stock.push(await timed(stockRead));
    const repo = await openRepo(dir);
    const memo = createFleetMemo();
    cold.push(
      await timed(async () => {
        const { result } = await readFleetAt(repo, 'HEAD~1', memo);
        if (!result.ok) throw new Error(`the bench fleet does not parse: ${result.errors[0]?.message}`);
      }),
    );
    fileCount = memo.files.size;
    incremental.push(await timed(() => readFleetAt(repo, 'HEAD', memo)));
  }
  const [g, c, i] = [median(stock), median(cold), median(incremental)];
  console.log(
    `read: files=${fileCount} git_s=${g.toFixed(3)} cold_s=${c.toFixed(3)} incremental_s=${i.toFixed(3)} cold_ratio=${(c / g).toFixed(2)} incremental_ratio=${(i / g).toFixed(3)}`,
  );
} finally {
  rmSync(work, { recursive: true, force: true });
}
