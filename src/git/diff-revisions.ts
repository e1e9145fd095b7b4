import { diffFleets, type FleetDiff } from '../reconciler/diff-fleets.js';
import type { Fleet } from '../schema/fleet.js';
import { openRepo } from './git-repo.js';
import { invalidFleet } from './load-fleet.js';
import { createFleetMemo, readFleetAt, type FleetAtRevision } from './read-fleet-at.js';

function fleetOf({ result }: FleetAtRevision): Fleet {
  if (!result.ok) throw invalidFleet(result.errors);
  return result.value;
}

export interface RevisionDiff {
  base: string;
  head: string;
  diff: FleetDiff;
}

/**
 * What moving the fleet in the repository at `dir` from revision `base` to `head` does to every device
 * with a record at either revision. The second read reuses the first's parsed files. Throws
 * `invalid_manifest` when either revision does not parse.
 */
export async function diffRevisions(dir: string, base: string, head: string): Promise<RevisionDiff> {
  const repo = await openRepo(dir);
  const memo = createFleetMemo();
  const before = await readFleetAt(repo, base, memo);
  const after = await readFleetAt(repo, head, memo);
  return { base: before.commit, head: after.commit, diff: diffFleets(fleetOf(before), fleetOf(after)) };
}
