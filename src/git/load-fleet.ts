import { stat } from 'node:fs/promises';
import type { Fleet, InstalledPacket } from '../schema/fleet.js';
import { GitfleetError } from '../schema/gitfleet-error.js';
import { parseFleet } from '../schema/parse-fleet.js';
import { parseInstalled } from '../schema/parse-installed.js';
import { locatedMessage, type Problem } from '../schema/problem.js';
import { validateFleet, type ValidationReport } from '../reconciler/validate-fleet.js';
import { readBounded } from './read-bounded.js';
import { readFleetDir } from './read-fleet-dir.js';

async function assertDirectory(dir: string): Promise<void> {
  const info = await stat(dir).catch(() => undefined);
  if (!info) throw new GitfleetError('invalid_manifest', `${dir} does not exist`);
  if (!info.isDirectory()) throw new GitfleetError('invalid_manifest', `${dir} is not a directory`);
}

/** Validates the fleet in a working tree (files on disk). */
export async function validateFleetDir(dir: string): Promise<ValidationReport> {
  await assertDirectory(dir);
  return validateFleet(await readFleetDir(dir));
}

function invalid(problems: Problem[]): GitfleetError {
  const [first] = problems;
  return new GitfleetError(first?.code ?? 'invalid_manifest', problems.map(locatedMessage).join('\n'), {
    hint: 'run `gitfleet validate` to see every problem',
  });
}

/** Loads a fleet from a working tree for planning. Throws `invalid_manifest` or `duplicate_packet`. */
export async function loadFleetDir(dir: string): Promise<Fleet> {
  await assertDirectory(dir);
  const parsed = parseFleet(await readFleetDir(dir));
  if (!parsed.ok) throw invalid(parsed.errors);
  return parsed.value;
}

/** Reads an installed-state file (`--installed FILE`). */
export async function loadInstalled(path: string): Promise<InstalledPacket[]> {
  const data = await readBounded(path).catch((cause: unknown) => {
    throw new GitfleetError('invalid_manifest', `cannot read ${path}`, { cause });
  });
  const parsed = parseInstalled({ path, data });
  if (!parsed.ok) throw invalid(parsed.errors);
  return parsed.value;
}
