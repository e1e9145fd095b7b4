import { stat } from 'node:fs/promises';
import type { Fleet, InstalledPacket } from '../schema/fleet.js';
import { GitfleetError } from '../schema/gitfleet-error.js';
import { parseFleet, type ParseResult } from '../schema/parse-fleet.js';
import { parseInstalled } from '../schema/parse-installed.js';
import { locatedMessage, type Problem } from '../schema/problem.js';
import { validateFleet, type ValidationReport } from '../reconciler/validate-fleet.js';
import { readBounded } from './read-bounded.js';
import { openRepo } from './git-repo.js';
import { readFleetAt } from './read-fleet-at.js';
import { readFleetDir } from './read-fleet-dir.js';

async function assertDirectory(dir: string): Promise<void> {
  const info = await stat(dir).catch(() => undefined);
  if (!info) throw new GitfleetError('invalid_manifest', `${dir} does not exist`);
  if (!info.isDirectory()) throw new GitfleetError('invalid_manifest', `${dir} is not a directory`);
}

/**
 * Parses the fleet in `dir`: the files on disk, or with `rev` the files of that revision in the git
 * repository at `dir` (uncommitted files are then ignored).
 */
async function parseFleetSource(dir: string, rev: string | undefined): Promise<ParseResult<Fleet>> {
  await assertDirectory(dir);
  if (rev === undefined) return parseFleet(await readFleetDir(dir));
  return (await readFleetAt(await openRepo(dir), rev)).result;
}

/** Everything `validate` reports about the fleet in `dir` (at `rev` when given). */
export async function validateFleetSource(dir: string, rev?: string): Promise<ValidationReport> {
  return validateFleet(await parseFleetSource(dir, rev));
}

/** The error for a fleet that does not parse: every problem, located. */
export function invalidFleet(problems: readonly Problem[]): GitfleetError {
  const [first] = problems;
  return new GitfleetError(first?.code ?? 'invalid_manifest', problems.map(locatedMessage).join('\n'), {
    hint: 'run `gitfleet validate` to see every problem',
  });
}

/** Loads the fleet in `dir` (at `rev` when given) for planning. Throws `invalid_manifest` or `duplicate_packet`. */
export async function loadFleet(dir: string, rev?: string): Promise<Fleet> {
  const parsed = await parseFleetSource(dir, rev);
  if (!parsed.ok) throw invalidFleet(parsed.errors);
  return parsed.value;
}

/** Reads an installed-state file (`--installed FILE`). */
export async function loadInstalled(path: string): Promise<InstalledPacket[]> {
  const data = await readBounded(path).catch((cause: unknown) => {
    throw new GitfleetError('invalid_manifest', `cannot read ${path}`, { cause });
  });
  const parsed = parseInstalled({ path, data });
  if (!parsed.ok) throw invalidFleet(parsed.errors);
  return parsed.value;
}
