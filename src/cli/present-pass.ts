import type { PassReport } from '../agent/run-pass.js';
import { shortRevision } from '../reconciler/summarise-status.js';

/** A pass as a person reads it: the result, each action with its outcome, errors, the state commit. */
export function renderPass(report: PassReport, deviceId: string): string {
  const at = report.revision ? shortRevision(report.revision) : 'no revision';
  const lines = [`${deviceId}: ${report.result} at ${at}`];
  if (report.actions.length === 0 && report.errors.length === 0) lines.push('  nothing to do');
  for (const a of report.actions) {
    const change = [a.from, a.to].filter((l) => l !== undefined).join(' → ');
    lines.push(`  ${a.outcome.padEnd(7)} ${a.type} ${a.name} ${change}`.trimEnd());
    lines.push(`          ${a.message}`);
  }
  for (const e of report.errors) {
    lines.push(`  error ${e.code}${e.packet ? ` (${e.packet})` : ''}: ${e.message}`);
    if (e.output)
      lines.push(
        ...e.output
          .trimEnd()
          .split('\n')
          .slice(-5)
          .map((l) => `    | ${l}`),
      );
  }
  const recorded = report.recorded;
  if (recorded) {
    const state = recorded.changed ? `state commit ${shortRevision(recorded.commit)}` : 'state unchanged';
    const pushed = recorded.pushed
      ? 'pushed'
      : `not pushed${recorded.pushError ? `: ${recorded.pushError}` : ''}`;
    lines.push(`  ${state}, ${pushed}`);
  }
  return lines.join('\n');
}
