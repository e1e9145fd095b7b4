import { Journal as validate } from './compiled-validators.js';
import type { Hooks, Labels } from './fleet.js';
import { makeLabels } from './labels.js';

/**
 * The steps of the agent that have side effects, each written ahead to the journal before it starts
 * (Mender's state machine, cut down to what one packet goes through).
 *
 * install / upgrade: fetching → extracting → installing → checking → switching → (journal: installed)
 * uninstall:         uninstalling → removing → (journal: gone)
 * A failing `installing` or `checking` goes to rollback: the new slot is removed, the previous one stays
 * current and the packet is marked bad.
 */
export type AgentStep =
  'fetching' | 'extracting' | 'installing' | 'checking' | 'switching' | 'uninstalling' | 'removing';

/** A packet as the device has it installed, with what uninstalling it needs. */
export interface InstalledRecord {
  name: string;
  labels: Labels;
  sha256: string;
  /** The slot folder's name under `<root>/<name>/slots/`: the sha256's first 16 hex digits. */
  slot: string;
  /** Names of the packets it required: uninstalls go dependents first. */
  requires: string[];
  hooks: Hooks;
  installedAt: string;
}

/** A packet whose action failed: not tried again while the fleet asks for exactly this packet. */
export interface BadPacket {
  /** `install` or `uninstall`, name, labels and sha256: the exact packet and what was tried. */
  key: string;
  name: string;
  code: string;
  message: string;
  output?: string;
}

/** The step in flight, written before it starts. */
export interface JournalStep {
  step: AgentStep;
  key: string;
  packet: InstalledRecord;
  /** The slot that was current when the action started, if any. */
  previousSlot: string | null;
  /** For a step that runs a hook: the `GITFLEET_HOOK_ID` its processes carry, so recovery can stop them. */
  hookId?: string;
}

/** The journal: one file, replaced atomically at every step. */
export interface Journal {
  version: 1;
  installed: InstalledRecord[];
  bad: BadPacket[];
  step: JournalStep | null;
  /** The last interrupted action and how often it was interrupted in a row (the loop breaker's count). */
  interrupted: { key: string; step: AgentStep; count: number } | null;
}

export const emptyJournal: Journal = { version: 1, installed: [], bad: [], step: null, interrupted: null };

/** Parses journal.json, checking it against its schema. Pure; returns why it is unusable. */
export function parseJournal(text: string): { ok: true; value: Journal } | { ok: false; message: string } {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    return { ok: false, message: (error as Error).message };
  }
  if (!validate(data)) {
    const first = validate.errors?.[0];
    return { ok: false, message: `${first?.instancePath || '/'} ${first?.message ?? 'invalid'}` };
  }
  const journal = data as Journal;
  const withLabels = <T extends { labels: Labels }>(r: T): T => ({
    ...r,
    labels: makeLabels(Object.entries(r.labels)),
  });
  return {
    ok: true,
    value: {
      ...journal,
      installed: journal.installed.map(withLabels),
      step: journal.step && { ...journal.step, packet: withLabels(journal.step.packet) },
    },
  };
}
