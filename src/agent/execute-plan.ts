import type { PassError } from '../reconciler/build-device-status.js';
import type { Action } from '../reconciler/plan-actions.js';
import type { DesiredPacket } from '../reconciler/desired-packet.js';
import { formatLabels } from '../schema/labels.js';
import type { AgentContext } from './agent-ports.js';
import { installPacket } from './install-packet.js';
import { actionError } from './mark-bad.js';
import { packetKey } from './packet-key.js';
import { uninstallPacket } from './uninstall-packet.js';

/** What became of one planned action. */
export interface ActionReport {
  type: Action['type'];
  name: string;
  /** Labels of the installed packet, for upgrades and uninstalls. */
  from?: string;
  /** Labels of the packet installed, for installs and upgrades. */
  to?: string;
  outcome: 'done' | 'failed' | 'skipped' | 'planned';
  /** The plan's reason, or what went wrong. */
  message: string;
}

/** The action's report before it runs (`--dry-run` prints these). */
export function plannedReport(action: Action): ActionReport {
  return {
    type: action.type,
    name: action.name,
    ...(action.type === 'install' ? {} : { from: formatLabels(action.from.labels) }),
    ...(action.type === 'uninstall' ? {} : { to: formatLabels(action.to.labels) }),
    outcome: 'planned',
    message: action.reason,
  };
}

function keyOf(action: Action): string {
  return action.type === 'uninstall'
    ? packetKey('uninstall', action.name, action.from.labels, action.from.sha256 ?? '')
    : packetKey('install', action.name, action.to.labels, action.to.artifact.sha256);
}

/**
 * Executes a plan in order. A packet marked bad is not tried again (its recorded error is reported); bad
 * marks for packets the plan no longer asks for are forgotten, so a packet is retried once the fleet
 * changes it. A failure stops only the packets that depend on the failed one: installs that require it,
 * and uninstalls of what a packet that could not be uninstalled still requires. Stops between actions when
 * the context's signal aborts (throws the signal's reason).
 */
export async function executePlan(
  ctx: AgentContext,
  actions: readonly Action[],
  desired: readonly DesiredPacket[],
): Promise<{ reports: ActionReport[]; errors: PassError[] }> {
  const keys = new Set(actions.map(keyOf));
  const { bad } = ctx.journal.journal;
  if (bad.some((b) => !keys.has(b.key))) await ctx.journal.write({ bad: bad.filter((b) => keys.has(b.key)) });

  const dependsOn = new Map(desired.map((d) => [d.packet.name, d.dependsOn]));
  const failed = new Map<string, PassError>();
  const reports: ActionReport[] = [];
  for (const action of actions) {
    ctx.signal?.throwIfAborted();
    const report = plannedReport(action);
    const error = await runAction(ctx, action, keyOf(action), failed, dependsOn);
    if (error) failed.set(action.name, error);
    reports.push({
      ...report,
      outcome: error ? 'failed' : 'done',
      message: error?.message ?? report.message,
    });
  }
  return { reports, errors: [...failed.values()] };
}

async function runAction(
  ctx: AgentContext,
  action: Action,
  key: string,
  failed: ReadonlyMap<string, PassError>,
  dependsOn: ReadonlyMap<string, readonly string[]>,
): Promise<PassError | undefined> {
  const bad = ctx.journal.journal.bad.find((b) => b.key === key);
  if (bad) {
    return actionError(bad.code, bad.message, action.name, {
      ...(bad.output ? { output: bad.output } : {}),
    });
  }
  if (action.type === 'uninstall') {
    const record = ctx.journal.journal.installed.find((r) => r.name === action.name);
    if (!record) return undefined;
    const holder = [...failed.keys()].find((n) =>
      ctx.journal.journal.installed.find((r) => r.name === n)?.requires.includes(action.name),
    );
    if (holder) {
      const cause = failed.get(holder) as PassError;
      return actionError(cause.code, `not uninstalled: ${holder} still requires it`, action.name, {
        retryable: cause.retryable,
      });
    }
    return uninstallPacket(ctx, record);
  }
  const blocker = (dependsOn.get(action.name) ?? []).find((d) => failed.has(d));
  if (blocker) {
    const cause = failed.get(blocker) as PassError;
    return actionError(cause.code, `not installed: it requires ${blocker}, which failed`, action.name, {
      retryable: cause.retryable,
    });
  }
  return installPacket(ctx, action.to, dependsOn.get(action.name) ?? []);
}
