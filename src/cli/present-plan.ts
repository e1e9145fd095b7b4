import { formatTable } from './format-table.js';
import type { Labels } from '../schema/fleet.js';
import { formatLabels, sortedLabels } from '../schema/labels.js';
import type { Action } from '../reconciler/plan-actions.js';
import type { DevicePlan } from '../reconciler/plan-device.js';

type OkPlan = Extract<DevicePlan, { ok: true }>;

/** The labels an action leaves the packet with (for an uninstall: the ones it removes). */
function actionLabels(action: Action): Labels {
  return action.type === 'uninstall' ? action.from.labels : action.to.labels;
}

function actionJson(action: Action) {
  return {
    type: action.type,
    name: action.name,
    labels: sortedLabels(actionLabels(action)),
    ...(action.type === 'upgrade' ? { from: sortedLabels(action.from.labels) } : {}),
    ...(action.type === 'uninstall' ? {} : { sha256: action.to.artifact.sha256 }),
    reason: action.reason,
    specs: action.specs,
  };
}

/** The `plan --json` document (DESIGN.md §5): `{device, desired, actions, warnings}`. */
export function planJson(plan: OkPlan) {
  return {
    device: { id: plan.device.id, labels: sortedLabels(plan.device.labels) },
    desired: plan.desired.map((d) => ({
      name: d.packet.name,
      labels: sortedLabels(d.packet.labels),
      artifact: d.packet.artifact,
      specs: d.specs,
      requiredBy: d.requiredBy,
    })),
    actions: plan.actions.map(actionJson),
    warnings: plan.warnings,
  };
}

/** The human form of a plan: the desired set and the actions, each with its reason. */
export function renderPlan(plan: OkPlan): string {
  const lines = [`device ${plan.device.id || '(no id)'} ${formatLabels(plan.device.labels)}`, ''];
  if (plan.desired.length === 0) lines.push('desired: nothing');
  else {
    lines.push('desired:');
    const why = (d: OkPlan['desired'][number]) =>
      d.specs.length > 0 ? `spec ${d.specs.join(', ')}` : `required by ${d.requiredBy.join(', ')}`;
    lines.push(
      ...formatTable([
        ['PACKET', 'LABELS', 'WHY'],
        ...plan.desired.map((d) => [d.packet.name, formatLabels(d.packet.labels), why(d)]),
      ]).map((l) => `  ${l}`),
    );
  }
  lines.push('');
  if (plan.actions.length === 0) lines.push('actions: none, the device is converged');
  else {
    lines.push('actions:');
    lines.push(
      ...formatTable([
        ['ACTION', 'PACKET', 'LABELS', 'REASON'],
        ...plan.actions.map((a) => [a.type, a.name, formatLabels(actionLabels(a)), a.reason]),
      ]).map((l) => `  ${l}`),
    );
  }
  for (const w of plan.warnings) lines.push(`warning: ${w}`);
  return lines.join('\n');
}
