import { stringify } from 'yaml';
import { compareStrings } from './compare-strings.js';
import type { Labels } from './fleet.js';
import { makeLabels, sortedLabels } from './labels.js';
import type { ParseResult } from './parse-fleet.js';
import type { SourceFile } from './parse-yaml-documents.js';
import { parseSingleDocument } from './parse-single-document.js';

/** A kstatus condition: `Ready` (converged) or `Stalled` (cannot make progress without a change). */
export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
}

export interface StatusPacket {
  name: string;
  labels: Labels;
  sha256?: string;
  installedAt?: string;
}

export interface StatusError {
  code: string;
  message: string;
  packet?: string;
  /** The tail of a failed hook's stdout and stderr. */
  output?: string;
}

/** status.yaml on a device's state ref (DESIGN.md §3); mirrors `status.schema.json`. */
export interface DeviceStatus {
  device: string;
  labels: Labels;
  /** Full id of the source commit this state converged to (or tried to); '' before the first sync. */
  observedRevision: string;
  conditions: Condition[];
  packets: StatusPacket[];
  errors: StatusError[];
}

/**
 * status.yaml text: fixed key order, packets by name, labels sorted. The same status always gives the
 * same bytes, which is what lets the agent commit only when something changed.
 */
export function formatDeviceStatus(status: DeviceStatus): string {
  const doc = {
    device: status.device,
    labels: sortedLabels(status.labels),
    observedRevision: status.observedRevision,
    conditions: status.conditions.map((c) => ({
      type: c.type,
      status: c.status,
      reason: c.reason,
      message: c.message,
    })),
    packets: [...status.packets]
      .sort((a, b) => compareStrings(a.name, b.name))
      .map((p) => ({
        name: p.name,
        labels: sortedLabels(p.labels),
        ...(p.sha256 === undefined ? {} : { sha256: p.sha256 }),
        ...(p.installedAt === undefined ? {} : { installedAt: p.installedAt }),
      })),
    errors: status.errors.map((e) => ({
      code: e.code,
      message: e.message,
      ...(e.packet ? { packet: e.packet } : {}),
      ...(e.output ? { output: e.output } : {}),
    })),
  };
  return stringify(doc, { lineWidth: 0, defaultStringType: 'QUOTE_DOUBLE', defaultKeyType: 'PLAIN' });
}

/** Parses a status.yaml, which comes from a device and is untrusted: bounded, schema-checked. */
export function parseDeviceStatus(file: SourceFile): ParseResult<DeviceStatus> {
  const parsed = parseSingleDocument(file, 'Status');
  if (!parsed.ok) return { ok: false, errors: parsed.errors, warnings: [] };
  const doc = parsed.doc;
  const raw = doc.value as DeviceStatus;
  const labels = (value: Labels | undefined) => makeLabels(Object.entries(value ?? {}));
  return {
    ok: true,
    value: {
      ...raw,
      labels: labels(raw.labels),
      conditions: raw.conditions.map((c) => ({ ...c, reason: c.reason ?? '', message: c.message ?? '' })),
      packets: raw.packets.map((p) => ({ ...p, labels: labels(p.labels) })),
    },
    warnings: [],
  };
}
