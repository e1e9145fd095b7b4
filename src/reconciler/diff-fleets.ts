import { compareStrings } from '../schema/compare-strings.js';
import type { Fleet, Packet } from '../schema/fleet.js';
import { formatLabels, labelsKey } from '../schema/labels.js';
import type { DesiredPacket } from './desired-packet.js';
import type { DesiredState, ResolveError } from './resolve-desired-state.js';
import { resolveFleet } from './resolve-fleet.js';

/** Why a packet is desired: the specs that ask for it and the desired packets that require it (sorted). */
interface Because {
  readonly specs: readonly string[];
  readonly requiredBy: readonly string[];
}

/**
 * One difference in a device's desired state between BASE and HEAD.
 * - `record-added` / `record-removed`: the device has a device record only at HEAD / only at BASE; its
 *   desired set at the other revision counts as empty (a removed device that failed at BASE has no
 *   other entry; an added one that fails at HEAD gets `failing`).
 * - `install` / `upgrade` / `uninstall`: a packet name desired only at HEAD / at both with another packet
 *   (labels or artifact sha256 differ) / only at BASE. Installs and upgrades carry the HEAD reasons,
 *   uninstalls the BASE ones (the specs that had asked for the packet, the packets that had required it).
 * - `failing`: the desired state resolves at BASE (or the device is new) and is an error at HEAD. Fail
 *   closed: the agent changes nothing, so no packet entries come with it.
 * - `fixed`: an error at BASE (`errors`), resolves at HEAD. The BASE gives no desired set to compare
 *   with (the agent kept whatever it had while failing), so every packet of the HEAD desired state
 *   follows as an `install`: what the agent will now converge to.
 * - `still-failing`: an error at both revisions, with a different set of errors (`from` at BASE).
 */
export type DiffEntry =
  | { readonly type: 'record-added' }
  | { readonly type: 'record-removed' }
  | { readonly type: 'failing'; readonly errors: readonly ResolveError[] }
  | { readonly type: 'fixed'; readonly errors: readonly ResolveError[] }
  | {
      readonly type: 'still-failing';
      readonly from: readonly ResolveError[];
      readonly errors: readonly ResolveError[];
    }
  | ({ readonly type: 'install'; readonly name: string; readonly to: Packet } & Because)
  | ({
      readonly type: 'upgrade';
      readonly name: string;
      readonly from: Packet;
      readonly to: Packet;
    } & Because)
  | ({ readonly type: 'uninstall'; readonly name: string; readonly from: Packet } & Because);

/** Devices whose desired state changes in exactly the same way. */
export interface DiffGroup {
  /** The change in canonical text: equal keys are equal changes. Groups of equal size sort by it. */
  readonly key: string;
  /** The record entry first, then `failing`/`fixed`/`still-failing`, then packet entries by name. */
  readonly changes: readonly DiffEntry[];
  /** Device ids, sorted. */
  readonly devices: readonly string[];
}

/** What merging HEAD instead of BASE would change in the desired state of every known device. */
export interface FleetDiff {
  /** One line, e.g. `12 devices change: 9 upgrade logger 1.2.0→1.3.0, 3 fail: ambiguous_match`. */
  readonly summary: string;
  /** Devices with a device record at either revision. */
  readonly checked: number;
  /** Devices with at least one entry; the others are counted here only. */
  readonly changed: number;
  /** Devices with a device record at HEAD whose desired state there is an error (changed or not). */
  readonly failing: number;
  /** Devices with a `failing` entry: an error at HEAD that they did not have (what `--fail-on error` counts). */
  readonly newlyFailing: number;
  /** Largest first, then by key. */
  readonly groups: readonly DiffGroup[];
}

/** Groups the summary names; the rest are counted. */
const SUMMARY_GROUPS = 3;
/** Entries of one change the summary names; the rest are counted. */
const SUMMARY_ENTRIES = 3;

const none: readonly DesiredPacket[] = Object.freeze([]);

/** An entry with its canonical key and a small id, so a device's change key is a short string of ids. */
interface Interned {
  readonly id: number;
  readonly key: string;
  readonly entry: DiffEntry;
}

/**
 * Interned entries. Desired packets are shared between devices that have them for the same reasons, so
 * most entries are found by identity and their keys are built once per fleet, not once per device.
 */
interface Entries {
  readonly byKey: Map<string, Interned>;
  readonly installs: Map<DesiredPacket, Interned>;
  readonly uninstalls: Map<DesiredPacket, Interned>;
  readonly upgrades: Map<DesiredPacket, Map<DesiredPacket, Interned>>;
  /** Per packet: name, labelset and artifact sha256, the identity that decides "same packet". */
  readonly packetKeys: Map<Packet, string>;
  readonly added: Interned;
  readonly removed: Interned;
}

function intern(entries: Pick<Entries, 'byKey'>, key: string, make: () => DiffEntry): Interned {
  let interned = entries.byKey.get(key);
  if (!interned) entries.byKey.set(key, (interned = { id: entries.byKey.size, key, entry: make() }));
  return interned;
}

function newEntries(): Entries {
  const byKey = new Map<string, Interned>();
  return {
    byKey,
    installs: new Map(),
    uninstalls: new Map(),
    upgrades: new Map(),
    packetKeys: new Map(),
    added: intern({ byKey }, 'record-added', () => ({ type: 'record-added' })),
    removed: intern({ byKey }, 'record-removed', () => ({ type: 'record-removed' })),
  };
}

function packetKey(entries: Entries, packet: Packet): string {
  let key = entries.packetKeys.get(packet);
  if (key === undefined) {
    key = `${packet.name} ${labelsKey(packet.labels)} ${packet.artifact.sha256.toLowerCase()}`;
    entries.packetKeys.set(packet, key);
  }
  return key;
}

function becauseKey(desired: DesiredPacket): string {
  return `specs=${desired.specs.join(',')} requiredBy=${desired.requiredBy.join(',')}`;
}

function because(desired: DesiredPacket): Because {
  return { specs: desired.specs, requiredBy: desired.requiredBy };
}

/** An install (the packet is only at HEAD) or an uninstall (only at BASE), interned per desired packet. */
function onePacket(entries: Entries, type: 'install' | 'uninstall', desired: DesiredPacket): Interned {
  const memo = type === 'install' ? entries.installs : entries.uninstalls;
  let interned = memo.get(desired);
  if (!interned) {
    const key = `${type} ${packetKey(entries, desired.packet)} ${becauseKey(desired)}`;
    const { name } = desired.packet;
    interned = intern(entries, key, () =>
      type === 'install'
        ? { type, name, to: desired.packet, ...because(desired) }
        : { type, name, from: desired.packet, ...because(desired) },
    );
    memo.set(desired, interned);
  }
  return interned;
}

function upgrade(entries: Entries, from: DesiredPacket, to: DesiredPacket): Interned {
  let byTo = entries.upgrades.get(from);
  if (!byTo) entries.upgrades.set(from, (byTo = new Map<DesiredPacket, Interned>()));
  let interned = byTo.get(to);
  if (!interned) {
    const key = `upgrade ${packetKey(entries, from.packet)} → ${packetKey(entries, to.packet)} ${becauseKey(to)}`;
    interned = intern(entries, key, () => ({
      type: 'upgrade',
      name: to.packet.name,
      from: from.packet,
      to: to.packet,
      ...because(to),
    }));
    byTo.set(to, interned);
  }
  return interned;
}

/** The errors as a set: order-independent text, equal for equal code, app and message. */
function errorsKey(errors: readonly ResolveError[]): string {
  return errors
    .map((e) => `${e.code} ${e.app ?? ''} ${e.message}`)
    .sort(compareStrings)
    .join('\n');
}

function errorEntry(entries: Entries, type: 'failing' | 'fixed', errors: readonly ResolveError[]): Interned {
  return intern(entries, `${type} ${errorsKey(errors)}`, () => ({ type, errors }));
}

/** Install, upgrade and uninstall entries between two desired sets, both sorted by name: one merge pass. */
function diffPackets(
  entries: Entries,
  before: readonly DesiredPacket[],
  after: readonly DesiredPacket[],
  out: Interned[],
): void {
  let i = 0;
  let j = 0;
  while (i < before.length || j < after.length) {
    const from = before[i];
    const to = after[j];
    const order = !from ? 1 : !to ? -1 : compareStrings(from.packet.name, to.packet.name);
    if (order < 0 && from) {
      out.push(onePacket(entries, 'uninstall', from));
      i++;
    } else if (order > 0 && to) {
      out.push(onePacket(entries, 'install', to));
      j++;
    } else if (from && to) {
      if (from.packet !== to.packet && packetKey(entries, from.packet) !== packetKey(entries, to.packet))
        out.push(upgrade(entries, from, to));
      i++;
      j++;
    }
  }
}

/**
 * The entries of one device (empty: unchanged). `undefined` stands for "no device record at this
 * revision", whose desired set counts as empty.
 */
function diffDevice(
  entries: Entries,
  base: DesiredState | undefined,
  head: DesiredState | undefined,
): Interned[] {
  const out: Interned[] = [];
  if (!base) out.push(entries.added);
  if (!head) out.push(entries.removed);
  if (head && !head.ok) {
    if (!base || base.ok) out.push(errorEntry(entries, 'failing', head.errors));
    else if (errorsKey(base.errors) !== errorsKey(head.errors)) {
      const key = `still-failing ${errorsKey(base.errors)} → ${errorsKey(head.errors)}`;
      out.push(
        intern(entries, key, () => ({ type: 'still-failing', from: base.errors, errors: head.errors })),
      );
    }
    return out;
  }
  if (base && !base.ok && head) out.push(errorEntry(entries, 'fixed', base.errors));
  diffPackets(entries, base?.ok ? base.packets : none, head?.ok ? head.packets : none, out);
  return out;
}

/** Every device with a record at a revision, resolved against that revision's fleet, by id. */
function resolveRecords(fleet: Fleet): Map<string, DesiredState> {
  const devices = fleet.devices.map((r) => ({ id: r.id, labels: r.labels }));
  return new Map(resolveFleet(fleet, devices).map((state) => [state.device.id, state]));
}

/** `12,345`: thousands grouped with commas, the same on every machine. */
export function formatCount(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

function codes(errors: readonly ResolveError[]): string {
  return [...new Set(errors.map((e) => e.code))].sort(compareStrings).join('/');
}

/** A packet in few words: its `version` label, else its labelset (nothing for an empty one). */
function shortPacket(packet: Packet): string {
  const version = Object.hasOwn(packet.labels, 'version') ? packet.labels.version : undefined;
  if (version !== undefined) return ` ${version}`;
  return Object.keys(packet.labels).length > 0 ? ` ${formatLabels(packet.labels)}` : '';
}

/** ` 1.2.0→1.3.0` when both packets have a `version` label and it differs, else the labelsets. */
function describeUpgrade(from: Packet, to: Packet): string {
  const a = Object.hasOwn(from.labels, 'version') ? from.labels.version : undefined;
  const b = Object.hasOwn(to.labels, 'version') ? to.labels.version : undefined;
  if (a !== undefined && b !== undefined && a !== b) return ` ${a}→${b}`;
  if (labelsKey(from.labels) === labelsKey(to.labels)) return `${shortPacket(to)} (artifact changed)`;
  return ` ${formatLabels(from.labels)}→${formatLabels(to.labels)}`;
}

/** An entry in a few words, e.g. `upgrade logger 1.2.0→1.3.0` or `fail: ambiguous_match`. */
export function describeEntry(entry: DiffEntry): string {
  switch (entry.type) {
    case 'record-added':
      return 'device record added';
    case 'record-removed':
      return 'device record removed';
    case 'failing':
      return `fail: ${codes(entry.errors)}`;
    case 'fixed':
      return `fixed (was ${codes(entry.errors)})`;
    case 'still-failing':
      return `fail: ${codes(entry.errors)} (was ${codes(entry.from)})`;
    case 'install':
      return `install ${entry.name}${shortPacket(entry.to)}`;
    case 'upgrade':
      return `upgrade ${entry.name}${describeUpgrade(entry.from, entry.to)}`;
    case 'uninstall':
      return `uninstall ${entry.name}${shortPacket(entry.from)}`;
  }
}

/** A change in a few words: its first entries joined with ` + `, the rest counted. */
function describeChange(changes: readonly DiffEntry[]): string {
  const named = changes.slice(0, SUMMARY_ENTRIES).map(describeEntry);
  const rest = changes.length - named.length;
  return rest > 0 ? `${named.join(' + ')} + ${rest} more` : named.join(' + ');
}

function summarize(groups: readonly DiffGroup[], checked: number, changed: number): string {
  const devices = (n: number) => `${formatCount(n)} ${n === 1 ? 'device' : 'devices'}`;
  if (changed === 0) return `No device changes (${devices(checked)} checked)`;
  const named = groups
    .slice(0, SUMMARY_GROUPS)
    .map((g) => `${formatCount(g.devices.length)} ${describeChange(g.changes)}`);
  const rest = groups.slice(SUMMARY_GROUPS);
  if (rest.length > 0) {
    const count = rest.reduce((sum, g) => sum + g.devices.length, 0);
    named.push(
      `${formatCount(count)} in ${formatCount(rest.length)} other ${rest.length === 1 ? 'change' : 'changes'}`,
    );
  }
  return `${devices(changed)} ${changed === 1 ? 'changes' : 'change'}: ${named.join(', ')}`;
}

/**
 * The change `diff BASE HEAD` reports: for every device with a device record at either revision (labels
 * are the record's labels at that revision), its desired state at BASE and at HEAD and the difference,
 * devices with the same difference grouped. Unchanged devices are counted, not listed. Each fleet is
 * indexed once and resolved with `resolveFleet`; the rest is linear in devices × desired packets.
 * Pure and deterministic.
 */
export function diffFleets(base: Fleet, head: Fleet): FleetDiff {
  const before = resolveRecords(base);
  const after = resolveRecords(head);
  const ids = [...new Set([...before.keys(), ...after.keys()])].sort(compareStrings);
  const entries = newEntries();
  const byChange = new Map<string, { changes: Interned[]; devices: string[] }>();
  let changed = 0;
  let failing = 0;
  for (const id of ids) {
    const state = after.get(id);
    if (state && !state.ok) failing++;
    const changes = diffDevice(entries, before.get(id), state);
    if (changes.length === 0) continue;
    changed++;
    const key = changes.map((c) => c.id).join(',');
    const group = byChange.get(key);
    if (group) group.devices.push(id);
    else byChange.set(key, { changes, devices: [id] });
  }
  const groups = [...byChange.values()]
    .map(({ changes, devices }) => ({
      key: changes.map((c) => c.key).join('\n'),
      changes: changes.map((c) => c.entry),
      devices,
    }))
    .sort((a, b) => b.devices.length - a.devices.length || compareStrings(a.key, b.key));
  const newlyFailing = groups
    .filter((g) => g.changes.some((c) => c.type === 'failing'))
    .reduce((n, g) => n + g.devices.length, 0);
  return {
    summary: summarize(groups, ids.length, changed),
    checked: ids.length,
    changed,
    failing,
    newlyFailing,
    groups,
  };
}
