import { clip } from './format-table.js';
import { describeEntry, formatCount, type DiffEntry, type FleetDiff } from '../reconciler/diff-fleets.js';
import type { ResolveError } from '../reconciler/resolve-desired-state.js';
import type { Packet } from '../schema/fleet.js';
import { sortedLabels } from '../schema/labels.js';

/** GitHub refuses comments over 65,536 characters; the rendered markdown stays under this. */
const MAX_MARKDOWN_CHARS = 60_000;
/** Table rows (groups) shown; a line counts the rest. */
const MAX_GROUPS = 50;
/** Entries shown per group; a line counts the rest. */
const MAX_ENTRIES = 10;
/** Characters kept of one text from the fleet (an id, a label, a message) and of the summary. */
const MAX_TEXT = 300;
const MAX_SUMMARY = 1_000;
/** Room a devices cell needs at least: the count, one id and `… and N more`. */
const MIN_DEVICES_CELL = 200;
/** Room kept for the lines after the table. */
const FOOTER_ROOM = 500;

function packetJson(packet: Packet) {
  return { labels: sortedLabels(packet.labels), sha256: packet.artifact.sha256 };
}

function errorsJson(errors: readonly ResolveError[]) {
  return errors.map((e) => ({
    code: e.code,
    message: e.message,
    ...(e.app === undefined ? {} : { app: e.app }),
  }));
}

function entryJson(entry: DiffEntry) {
  switch (entry.type) {
    case 'record-added':
    case 'record-removed':
      return { type: entry.type };
    case 'failing':
    case 'fixed':
      return { type: entry.type, errors: errorsJson(entry.errors) };
    case 'still-failing':
      return { type: entry.type, from: errorsJson(entry.from), errors: errorsJson(entry.errors) };
    case 'install':
      return {
        type: entry.type,
        name: entry.name,
        to: packetJson(entry.to),
        specs: entry.specs,
        requiredBy: entry.requiredBy,
      };
    case 'upgrade':
      return {
        type: entry.type,
        name: entry.name,
        from: packetJson(entry.from),
        to: packetJson(entry.to),
        specs: entry.specs,
        requiredBy: entry.requiredBy,
      };
    case 'uninstall':
      return {
        type: entry.type,
        name: entry.name,
        from: packetJson(entry.from),
        specs: entry.specs,
        requiredBy: entry.requiredBy,
      };
  }
}

/**
 * The `diff --json` document: `{summary, devices: {checked, changed, failing}, groups: [{devices,
 * changes}]}`, groups largest first, every changed device's id listed. Installs and upgrades carry the
 * HEAD `specs`/`requiredBy`, uninstalls the BASE ones.
 */
export function diffJson(diff: FleetDiff) {
  return {
    summary: diff.summary,
    devices: { checked: diff.checked, changed: diff.changed, failing: diff.failing },
    groups: diff.groups.map((g) => ({ devices: g.devices, changes: g.changes.map(entryJson) })),
  };
}

const htmlEscapes: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '@': '@\u200b',
};

/**
 * Text from the fleet made inert in a markdown table cell: line breaks and other control or format
 * characters become spaces, markdown punctuation is backslash-escaped (a `|` cannot end the cell, a
 * backtick cannot open code), HTML is entity-escaped and `@` cannot mention anyone.
 */
function escapeMarkdown(text: string): string {
  return text.replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\\`*_~[\]|<>&@#!]/gu, (c) => {
    const html = htmlEscapes[c];
    if (html !== undefined) return html;
    return /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u.test(c) ? ' ' : `\\${c}`;
  });
}

const safe = (text: string, max = MAX_TEXT) => escapeMarkdown(clip(text, max));

function devicesCount(n: number): string {
  return `${formatCount(n)} ${n === 1 ? 'device' : 'devices'}`;
}

function errorsText(errors: readonly ResolveError[]): string {
  return errors.map((e) => `${e.code}: ${e.message}`).join('; ');
}

function becauseText(specs: readonly string[], requiredBy: readonly string[]): string {
  const parts = [
    ...(specs.length > 0 ? [`spec ${specs.join(', ')}`] : []),
    ...(requiredBy.length > 0 ? [`required by ${requiredBy.join(', ')}`] : []),
  ];
  return parts.join('; ');
}

/** Why an entry is there, as plain text: the specs or requiring packets, or the errors. */
function reason(entry: DiffEntry): string {
  switch (entry.type) {
    case 'record-added':
      return 'device record only at HEAD';
    case 'record-removed':
      return 'device record only at BASE';
    case 'failing':
    case 'still-failing':
      return errorsText(entry.errors);
    case 'fixed':
      return `at BASE: ${errorsText(entry.errors)}`;
    case 'install':
    case 'upgrade':
      return becauseText(entry.specs, entry.requiredBy);
    case 'uninstall':
      return `at BASE: ${becauseText(entry.specs, entry.requiredBy)}`;
  }
}

/**
 * `**N**: id, id, … and M more`: at most `max` ids, and no more than fit in `room` characters (the count
 * and the closing `… and M more` always fit in 60).
 */
function devicesCell(devices: readonly string[], max: number, room: number): string {
  const shown: string[] = [];
  let length = 60;
  for (const id of devices.slice(0, max)) {
    const text = safe(id, 130);
    if (length + text.length + 2 > room) break;
    shown.push(text);
    length += text.length + 2;
  }
  const rest = devices.length - shown.length;
  const list = rest > 0 ? [...shown, `… and ${formatCount(rest)} more`] : shown;
  return `**${formatCount(devices.length)}**: ${list.join(', ')}`;
}

/** The Change and Because of cells of a group: one line per entry, the first `MAX_ENTRIES` of them. */
function changeCells(changes: readonly DiffEntry[]): string {
  const shown = changes.slice(0, MAX_ENTRIES);
  const what = shown.map((e) => safe(describeEntry(e)));
  const why = shown.map((e) => safe(reason(e)) || '—');
  const rest = changes.length - shown.length;
  if (rest > 0) {
    what.push(`… and ${formatCount(rest)} more`);
    why.push('');
  }
  return ` | ${what.join('<br>')} | ${why.join('<br>')} |`;
}

export interface DiffMarkdownOptions {
  /** Device ids listed per group before `… and N more`; 20 unless given. */
  maxDevicesPerGroup?: number;
}

/**
 * A pull request comment for a diff: the summary in bold, then one table row per group of devices with
 * the same change (at most 50 rows). Every text from the fleet is escaped, so ids, labels and messages
 * cannot break the table; the whole comment stays under `MAX_MARKDOWN_CHARS`, rows that do not fit are
 * counted in a closing line instead. `diff --json` lists everything.
 */
export function renderDiffMarkdown(diff: FleetDiff, options: DiffMarkdownOptions = {}): string {
  const maxDevices = options.maxDevicesPerGroup ?? 20;
  const lines = [`**${safe(diff.summary, MAX_SUMMARY)}**`];
  if (diff.groups.length === 0) return lines.join('\n');
  const failing = diff.failing > 0 ? `, ${formatCount(diff.failing)} fail to resolve at HEAD` : '';
  lines.push('', `${devicesCount(diff.checked)} checked, ${formatCount(diff.changed)} change${failing}.`, '');
  lines.push('| Devices | Change | Because of |', '| --- | --- | --- |');
  let length = lines.reduce((sum, line) => sum + line.length + 1, 0);
  let shown = 0;
  for (const group of diff.groups.slice(0, MAX_GROUPS)) {
    const cells = changeCells(group.changes);
    const room = MAX_MARKDOWN_CHARS - FOOTER_ROOM - length - cells.length - 3;
    if (room < MIN_DEVICES_CELL) break;
    const row = `| ${devicesCell(group.devices, maxDevices, room)}${cells}`;
    lines.push(row);
    length += row.length + 1;
    shown++;
  }
  const hidden = diff.groups.slice(shown);
  if (hidden.length > 0) {
    const devices = hidden.reduce((sum, g) => sum + g.devices.length, 0);
    const cut = shown < Math.min(MAX_GROUPS, diff.groups.length) ? ' (comment size limit reached)' : '';
    lines.push(
      '',
      `… and ${formatCount(hidden.length)} more ${hidden.length === 1 ? 'group' : 'groups'} of changes on ${devicesCount(devices)}${cut}; \`gitfleet diff --json\` lists every device.`,
    );
  }
  return lines.join('\n');
}
