import { clip, formatTable } from './format-table.js';
import type { DeviceHistory, SourceSigner } from '../git/read-device-history.js';
import type { DeviceStateRow, DeviceStates } from '../git/read-device-states.js';
import {
  describeSignatureCheck,
  shortRevision,
  type SignatureCheck,
} from '../reconciler/summarise-status.js';

/**
 * Tables for `status` and `history`, and their `--json` documents. Everything in a state commit comes
 * from a device and is untrusted: cells drop control and bidi characters (a status.yaml must not be able
 * to repaint the terminal) and are cut to a bounded width. JSON keeps the text as it is (JSON escapes it)
 * and spells unknown values `null`, so every key is always present.
 */

const MAX_CELL = 80;

function cell(text: string, max = MAX_CELL): string {
  // eslint-disable-next-line no-control-regex
  const clean = text.replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, '?');
  return clip(clean, max);
}

function signatureJson(check: SignatureCheck) {
  return check.verified
    ? { verified: true, fingerprint: check.fingerprint, reason: null }
    : { verified: false, fingerprint: check.fingerprint ?? null, reason: check.reason };
}

function rowJson(row: DeviceStateRow) {
  return {
    device: row.device,
    hasRecord: row.hasRecord,
    reported: row.reported,
    state: row.state,
    summary: row.summary,
    errors: row.errors,
    observedRevision: row.observedRevision ?? null,
    behind: row.behind ?? null,
    lastSeen: row.lastSeen ?? null,
    stateCommit: row.stateCommit ?? null,
    signature: row.signature ? signatureJson(row.signature) : null,
  };
}

/** The `status --json` document: `{rev, commit, devices: [...]}`, devices sorted by id. */
export function statusJson(states: DeviceStates) {
  return { rev: states.rev, commit: states.commit, devices: states.devices.map(rowJson) };
}

const orNone = (value: string | number | undefined) => (value === undefined ? '-' : String(value));

/** The human form of `status`: one row per device, then the reasons of every device not Ready. */
export function renderStatus(states: DeviceStates): string {
  const { devices } = states;
  const lines = [`source ${cell(states.rev)} at ${shortRevision(states.commit)}`, ''];
  if (devices.length === 0) return [...lines, 'no devices: no device records and no state refs'].join('\n');
  lines.push(
    ...formatTable([
      ['DEVICE', 'STATE', 'OBSERVED', 'BEHIND', 'ERRORS', 'LAST SEEN', 'SIGNATURE'],
      ...devices.map((d) => [
        cell(d.device),
        d.state,
        d.observedRevision === undefined ? '-' : shortRevision(d.observedRevision),
        orNone(d.behind),
        d.errors.length > 0 ? cell(d.errors.join(','), 40) : '-',
        d.reported ? orNone(d.lastSeen) : 'never',
        d.signature ? cell(describeSignatureCheck(d.signature), 120) : '-',
      ]),
    ]),
  );
  const count = (state: string) => devices.filter((d) => d.state === state).length;
  const never = devices.filter((d) => !d.reported).length;
  const unverified = devices.filter((d) => d.signature && !d.signature.verified).length;
  lines.push(
    '',
    `${devices.length} devices: ${count('Ready')} Ready, ${count('Progressing')} Progressing, ` +
      `${count('Stalled')} Stalled, ${count('Unknown')} Unknown (${never} never reported); ` +
      `${unverified} UNVERIFIED`,
  );
  const troubled = devices.filter((d) => d.reported && d.state !== 'Ready');
  for (const d of troubled) lines.push(`  ${cell(d.device)}: ${cell(d.summary, 300)}`);
  return lines.join('\n');
}

function signerJson(signer: SourceSigner) {
  switch (signer.status) {
    case 'trusted':
      return { status: signer.status, fingerprint: signer.fingerprint, principals: signer.principals };
    case 'not-checked':
      return { status: signer.status, fingerprint: signer.fingerprint };
    case 'unsigned':
      return { status: signer.status };
    case 'bad':
      return { status: signer.status, reason: signer.reason };
  }
}

/** `alice (SHA256:…)`, `signed (not checked) SHA256:…`, `unsigned` or `bad signature: reason`. */
export function describeSourceSigner(signer: SourceSigner): string {
  switch (signer.status) {
    case 'trusted':
      return `${signer.principals.join(',')} (${signer.fingerprint})`;
    case 'not-checked':
      return `signed (not checked) ${signer.fingerprint}`;
    case 'unsigned':
      return 'unsigned';
    case 'bad':
      return `bad signature: ${signer.reason}`;
  }
}

/** The `history --json` document: the device, then its state commits newest first. */
export function historyJson(history: DeviceHistory) {
  const { device, ref, rev, commit, hasRecord, more } = history;
  return {
    device,
    ref,
    rev,
    commit,
    hasRecord,
    more,
    entries: history.entries.map((e) => ({
      stateCommit: e.stateCommit,
      recordedAt: e.recordedAt,
      signature: signatureJson(e.signature),
      observedRevision: e.observedRevision ?? null,
      state: e.state,
      summary: e.summary,
      errors: e.errors,
      source: e.source ? { ...e.source, signer: signerJson(e.source.signer) } : null,
    })),
  };
}

/** The human form of `history`: one row per state commit, newest first, with its source commit. */
export function renderHistory(history: DeviceHistory): string {
  const lines = [
    `device ${history.device} (${history.ref}), key from ${cell(history.rev)} at ${shortRevision(history.commit)}` +
      (history.hasRecord ? '' : ': NO DEVICE RECORD'),
    '',
    ...formatTable([
      [
        'RECORDED',
        'STATE COMMIT',
        'STATE',
        'OBSERVED',
        'ERRORS',
        'STATE SIGNATURE',
        'SOURCE',
        'AUTHOR',
        'SOURCE SIGNER',
      ],
      ...history.entries.map((e) => {
        const missing = e.observedRevision === undefined ? '-' : '(not in repository)';
        return [
          e.recordedAt,
          shortRevision(e.stateCommit),
          cell(e.summary, 40),
          e.observedRevision === undefined ? '-' : shortRevision(e.observedRevision),
          e.errors.length > 0 ? cell(e.errors.join(','), 40) : '-',
          cell(describeSignatureCheck(e.signature), 60),
          e.source ? cell(e.source.subject, 50) : missing,
          e.source ? `${cell(e.source.author, 50)} ${e.source.authoredAt}` : '-',
          e.source ? cell(describeSourceSigner(e.source.signer), 120) : '-',
        ];
      }),
    ]),
  ];
  if (history.more) lines.push('', `older state commits follow; raise --limit to see them`);
  return lines.join('\n');
}
