import { stat } from 'node:fs/promises';
import type { Fleet, InstalledPacket } from '../schema/fleet.js';
import { GitfleetError } from '../schema/gitfleet-error.js';
import { parseFleet } from '../schema/parse-fleet.js';
import { parseInstalled } from '../schema/parse-installed.js';
import { locatedMessage, type Problem } from '../schema/problem.js';
import { validateFleet, type ValidationReport } from '../reconciler/validate-fleet.js';
import { readBounded } from './read-bounded.js';
import { openRepo } from './git-repo.js';
import { atRevision, readFleetAt } from './read-fleet-at.js';
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
async function parseFleetSource(dir: string, rev: string | undefined) {
  await assertDirectory(dir);
  if (rev === undefined) return { parsed: parseFleet(await readFleetDir(dir)), commit: undefined };
  const { commit, result } = await readFleetAt(await openRepo(dir), rev);
  return { parsed: result, commit };
}

/** Everything `validate` reports about the fleet in `dir` (at `rev` when given, located `path@shortsha`). */
export async function validateFleetSource(dir: string, rev?: string): Promise<ValidationReport> {
  const { parsed, commit } = await parseFleetSource(dir, rev);
  const report = validateFleet(parsed);
  if (commit === undefined) return report;
  // Parse problems are located already; those found later point at manifests, located by repository path.
  const located = new Set<Problem>([...parsed.warnings, ...(parsed.ok ? [] : parsed.errors)]);
  const locate = (problems: Problem[]) =>
    problems.flatMap((p) => (located.has(p) ? [p] : atRevision([p], commit)));
  return { ...report, errors: locate(report.errors), warnings: locate(report.warnings) };
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
  const { parsed } = await parseFleetSource(dir, rev);
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
