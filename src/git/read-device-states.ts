import { join } from 'node:path';
import git from 'isomorphic-git';
import { compareStrings } from '../schema/compare-strings.js';
import { parseDeviceStatus, type DeviceStatus } from '../schema/device-status.js';
import type { DeviceRecord } from '../schema/fleet.js';
import type { ParseResult } from '../schema/parse-fleet.js';
import {
  summariseStatus,
  type DeviceState,
  type SignatureCheck,
  type StatusSummary,
} from '../reconciler/summarise-status.js';
import { openRepo, type GitRepo } from './git-repo.js';
import { invalidFleet } from './load-fleet.js';
import { readFleetAt } from './read-fleet-at.js';
import { readSignedCommit, type SignedCommit } from './read-signed-commit.js';
import { readStatusBlob, STATE_REFS, STATUS_FILE, stateRef } from './record-state.js';
import { parseSshPublicKey, type SshPublicKey } from './ssh-key.js';
import { verifySsh } from './ssh-signature.js';

/** Commits one walk may read to count `behind`; beyond it the count is left unknown. */
const MAX_WALK = 100_000;
/** State refs read side by side: most of a read is waiting on the file system. */
const PARALLEL_READS = 16;

/** The fleet at a revision, reduced to what reading device states needs. */
export interface FleetRecords {
  repo: GitRepo;
  /** The source commit `rev` names. */
  commit: string;
  records: Map<string, DeviceRecord>;
}

/** Opens the repository and reads the device records of the fleet at `rev`. Throws `invalidFleet` when it does not parse. */
export async function readFleetRecords(dir: string, rev: string): Promise<FleetRecords> {
  const repo = await openRepo(dir);
  const { commit, result } = await readFleetAt(repo, rev);
  if (!result.ok) throw invalidFleet(result.errors);
  return { repo, commit, records: new Map(result.value.devices.map((d) => [d.id, d])) };
}

/** The key a device record pins, or why the device has none. */
export type DeviceKey = { key: SshPublicKey } | { reason: string };

export function deviceKey(record: DeviceRecord | undefined): DeviceKey {
  if (!record) return { reason: 'no device record' };
  if (record.publicKey === undefined) return { reason: 'device record has no publicKey' };
  try {
    return { key: parseSshPublicKey(record.publicKey) };
  } catch (error) {
    return { reason: `device record publicKey is unusable: ${(error as Error).message}` };
  }
}

/**
 * Checks a state commit's SSH signature (namespace `git`) against the device's own key. Never throws: a
 * state commit comes from a device and may be anything.
 */
export function checkStateSignature(commit: SignedCommit, device: DeviceKey): SignatureCheck {
  let signer: SshPublicKey | undefined;
  let invalid: string | undefined;
  if (commit.signature === undefined) invalid = 'unsigned';
  else {
    try {
      signer = verifySsh(commit.signature, commit.payload, 'git').publicKey;
    } catch (error) {
      invalid = `bad signature: ${(error as Error).message}`;
    }
  }
  const fingerprint = signer?.fingerprint;
  if ('reason' in device) return { verified: false, reason: device.reason, fingerprint };
  if (!signer) return { verified: false, reason: invalid ?? 'unsigned', fingerprint };
  if (Buffer.compare(signer.blob, device.key.blob) !== 0) {
    return { verified: false, reason: `signed by another key (${signer.fingerprint})`, fingerprint };
  }
  return { verified: true, fingerprint: signer.fingerprint };
}

function rejected(message: string): ParseResult<DeviceStatus> {
  return { ok: false, errors: [{ severity: 'error', code: 'invalid_manifest', message }], warnings: [] };
}

/**
 * The status.yaml of a state commit, parsed and schema-checked (size-bounded by the parser), and checked
 * to be about `deviceId`. Never throws: a missing, garbage or oversized file comes back as a failed parse.
 */
export async function readStatusFile(
  repo: GitRepo,
  commit: SignedCommit,
  deviceId: string,
): Promise<ParseResult<DeviceStatus>> {
  // From the tree the commit names: the commit itself was already read and checked.
  const blob = await readStatusBlob(repo, commit.tree);
  if (!blob) return rejected(`state commit ${commit.oid} has no ${STATUS_FILE}`);
  const parsed = parseDeviceStatus({ path: STATUS_FILE, data: blob });
  if (parsed.ok && parsed.value.device !== deviceId) {
    return rejected(`${STATUS_FILE} names device ${JSON.stringify(parsed.value.device)}, not ${deviceId}`);
  }
  return parsed;
}

/** A git time (whole seconds since the epoch) as ISO 8601 in UTC, without the always-zero milliseconds. */
export function isoTime(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');
}

/**
 * Counts `git rev-list --count OBSERVED..TIP` for many observed revisions against one tip. Each commit's
 * parents and generation (1 + the highest parent generation) are read once and shared by every count;
 * a count then walks down the generations only from the tip to where the observed commit's ancestry
 * covers everything still queued, which is exact (a commit's children all have higher generations).
 */
class BehindCounter {
  private readonly nodes = new Map<string, { parents: string[]; generation: number }>();
  /** Promises, so devices read side by side share one count per observed revision. */
  private readonly counts = new Map<string, Promise<number | undefined>>();
  private tipGeneration: Promise<number | undefined> | undefined;

  constructor(
    private readonly repo: GitRepo,
    private readonly tip: string,
  ) {}

  behind(observed: string): Promise<number | undefined> {
    let count = this.counts.get(observed);
    if (!count) this.counts.set(observed, (count = this.count(observed)));
    return count;
  }

  private async parentsOf(oid: string): Promise<string[] | undefined> {
    const { fs, gitdir, cache } = this.repo;
    const read = await git.readCommit({ fs, gitdir, oid, cache }).catch(() => undefined);
    return read?.commit.parent;
  }

  /** Undefined when the commit or one of its ancestors is not in the repository, or the walk is too long. */
  private async generation(start: string): Promise<number | undefined> {
    const pending = new Map<string, string[]>();
    const stack = [start];
    let reads = 0;
    while (stack.length > 0) {
      const oid = stack[stack.length - 1] as string;
      if (this.nodes.has(oid)) {
        stack.pop();
        continue;
      }
      let parents = pending.get(oid);
      if (!parents) {
        if (++reads > MAX_WALK) return undefined;
        parents = await this.parentsOf(oid);
        if (!parents) return undefined;
        pending.set(oid, parents);
      }
      // Loops, not spreads: a hostile commit may have more parents than a call has arguments.
      const before = stack.length;
      for (const parent of parents) if (!this.nodes.has(parent)) stack.push(parent);
      if (stack.length > before) continue;
      let generation = 1;
      for (const parent of parents) {
        generation = Math.max(generation, 1 + (this.nodes.get(parent)?.generation ?? 0));
      }
      this.nodes.set(oid, { parents, generation });
      pending.delete(oid);
      stack.pop();
    }
    return this.nodes.get(start)?.generation;
  }

  private async count(observed: string): Promise<number | undefined> {
    this.tipGeneration ??= this.generation(this.tip);
    const top = await this.tipGeneration;
    const other = await this.generation(observed);
    if (top === undefined || other === undefined) return undefined;
    // true: reachable from the observed commit (not behind); false: only from the tip so far.
    const reached = new Map<string, boolean>();
    const levels = new Map<number, string[]>();
    let open = 0;
    const enqueue = (oid: string, covered: boolean) => {
      reached.set(oid, covered);
      if (!covered) open++;
      const level = this.nodes.get(oid)?.generation ?? 0;
      const queued = levels.get(level);
      if (queued) queued.push(oid);
      else levels.set(level, [oid]);
    };
    enqueue(observed, true);
    if (this.tip !== observed) enqueue(this.tip, false);
    let behind = 0;
    for (let level = Math.max(top, other); level > 0 && open > 0; level--) {
      for (const oid of levels.get(level) ?? []) {
        const covered = reached.get(oid) === true;
        if (!covered) {
          open--;
          behind++;
        }
        for (const parent of this.nodes.get(oid)?.parents ?? []) {
          const before = reached.get(parent);
          if (before === undefined) enqueue(parent, covered);
          else if (covered && !before) {
            reached.set(parent, true);
            open--;
          }
        }
      }
      levels.delete(level);
    }
    return behind;
  }
}

/** Every state ref's commit by device id. One packed-refs read for all (resolveRef re-reads it per ref). */
async function readStateTips(repo: GitRepo): Promise<Map<string, string>> {
  const { fs, gitdir } = repo;
  const names = await git.listRefs({ fs, gitdir, filepath: STATE_REFS });
  const packedText = await fs.promises.readFile(join(gitdir, 'packed-refs'), 'utf8').catch(() => '');
  const packed = new Map<string, string>();
  for (const line of packedText.split('\n')) {
    const match = /^([0-9a-f]{40}) (\S+)$/.exec(line);
    if (match) packed.set(match[2] as string, match[1] as string);
  }
  const tips = new Map<string, string>();
  for (const name of names) {
    const ref = stateRef(name);
    const loose = await fs.promises.readFile(join(gitdir, ref), 'utf8').catch(() => undefined);
    const direct = loose?.trim();
    const oid = /^[0-9a-f]{40}$/.test(direct ?? '')
      ? direct
      : loose === undefined
        ? packed.get(ref)
        : await git.resolveRef({ fs, gitdir, ref }).catch(() => undefined);
    if (oid) tips.set(name, oid);
  }
  return tips;
}

/** One device's row in `gitfleet status`. */
export interface DeviceStateRow {
  device: string;
  /** Whether the fleet has a device record for it. */
  hasRecord: boolean;
  /** False for a device with a record and no state ref. */
  reported: boolean;
  /** The latest state commit. */
  stateCommit: string | undefined;
  /** The state commit's committer time (ISO 8601), as the device's clock had it. */
  lastSeen: string | undefined;
  /** Undefined when the device never reported. */
  signature: SignatureCheck | undefined;
  observedRevision: string | undefined;
  /** Source commits the device is behind the tip; undefined when its observed commit is not in the repository. */
  behind: number | undefined;
  state: DeviceState;
  summary: string;
  errors: string[];
}

export interface DeviceStates {
  rev: string;
  /** The source commit `rev` names: device records come from it and `behind` counts up to it. */
  commit: string;
  /** Sorted by device id. */
  devices: DeviceStateRow[];
}

async function readReportedRow(
  repo: GitRepo,
  counter: BehindCounter,
  device: string,
  record: DeviceRecord | undefined,
  tip: string,
): Promise<DeviceStateRow> {
  const base = { device, hasRecord: record !== undefined, reported: true, stateCommit: tip };
  const commit = await readSignedCommit(repo, tip).catch((error: unknown) => error as Error);
  if (commit instanceof Error) {
    const reason = `state commit unreadable: ${commit.message}`;
    return {
      ...base,
      lastSeen: undefined,
      signature: { verified: false, reason, fingerprint: undefined },
      observedRevision: undefined,
      behind: undefined,
      ...summariseStatus(rejected(reason)),
    };
  }
  const parsed = await readStatusFile(repo, commit, device);
  const observedRevision =
    parsed.ok && parsed.value.observedRevision ? parsed.value.observedRevision : undefined;
  const summary: StatusSummary = summariseStatus(parsed);
  return {
    ...base,
    lastSeen: isoTime(commit.committedAt),
    signature: checkStateSignature(commit, deviceKey(record)),
    observedRevision,
    behind: observedRevision === undefined ? undefined : await counter.behind(observedRevision),
    ...summary,
  };
}

/**
 * Reads every device's latest state (DESIGN.md §5 `status`): all `refs/gitfleet/state/*` refs of the
 * repository at `dir`, each state commit's signature checked against the key in the device's record at
 * `rev` (default `main`), its status.yaml summarised, and how far its observed revision is behind `rev`.
 * Devices with a record and no state ref are listed as never reported. A hostile or broken state ref
 * gives its device an error row, never an exception. Throws `invalid_manifest` when `dir` is not a
 * repository, `rev` does not resolve, or the fleet at `rev` does not parse.
 */
export async function readDeviceStates(dir: string, options: { rev?: string } = {}): Promise<DeviceStates> {
  const rev = options.rev ?? 'main';
  const { repo, commit, records } = await readFleetRecords(dir, rev);
  const tips = await readStateTips(repo);
  const counter = new BehindCounter(repo, commit);
  const queue = [...tips];
  const devices: DeviceStateRow[] = [];
  const worker = async () => {
    for (let next = queue.pop(); next; next = queue.pop()) {
      const [device, tip] = next;
      devices.push(await readReportedRow(repo, counter, device, records.get(device), tip));
    }
  };
  await Promise.all(Array.from({ length: PARALLEL_READS }, worker));
  for (const id of records.keys()) {
    if (tips.has(id)) continue;
    devices.push({
      device: id,
      hasRecord: true,
      reported: false,
      stateCommit: undefined,
      lastSeen: undefined,
      signature: undefined,
      observedRevision: undefined,
      behind: undefined,
      state: 'Unknown',
      summary: 'never reported',
      errors: [],
    });
  }
  devices.sort((a, b) => compareStrings(a.device, b.device));
  return { rev, commit, devices };
}
