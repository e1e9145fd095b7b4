import {
  acceptedRevision,
  acceptRevision,
  syncSource,
  type SyncRequest,
  type SyncResult,
} from './sync-source.js';
import { readFleetAt, type FleetAtRevision, type FleetMemo } from './read-fleet-at.js';
import { verifyRevision, type TrustPolicy, type VerifiedRevision } from './verify-revision.js';

export interface PullRequest extends Omit<SyncRequest, 'timestamp'> {
  trust: TrustPolicy;
  /** Parsed files of earlier passes, so this one parses only what changed. */
  memo: FleetMemo;
}

export interface PulledFleet {
  sync: SyncResult;
  verified: VerifiedRevision;
  fleet: FleetAtRevision;
}

/**
 * DESIGN.md §3 steps 1–3: sync the source from the first usable mirror, verify the tip before any of its
 * files is parsed, accept it (the next pass checks descent from it and tells the server it has it), and
 * read the fleet at it. Verification runs on every pass, moved or not, so an expired timestamp is noticed
 * even when nothing new arrived. Throws `source_unreachable`, `untrusted_revision`, `rollback_refused` or
 * `stale_revision`; on any of them the accepted revision stays where it was and nothing is read.
 */
export async function pullFleet(request: PullRequest): Promise<PulledFleet> {
  const { repo, branch, trust, memo } = request;
  const accepted = await acceptedRevision(repo, branch);
  const sync = await syncSource({ ...request, timestamp: true, allowRollback: trust.allowRollback });
  const verified = await verifyRevision(repo, { tip: sync.tip, accepted, timestamp: sync.timestamp }, trust);
  await acceptRevision(repo, branch, sync.tip, sync.timestamp);
  return { sync, verified, fleet: await readFleetAt(repo, sync.tip, memo) };
}
