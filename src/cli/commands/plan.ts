import { Flags } from '@oclif/core';
import { GitfleetError } from '../../schema/gitfleet-error.js';
import { parseLabelArgs } from '../../schema/parse-label-args.js';
import { planDevice } from '../../reconciler/plan-device.js';
import { loadFleet, loadInstalled } from '../../git/load-fleet.js';
import { GitfleetCommand } from '../gitfleet-command.js';
import { planJson, renderPlan } from '../present-plan.js';

export default class Plan extends GitfleetCommand {
  static override summary = "Show one device's desired packets and the actions that would converge it.";
  static override description = `Resolves the device's labels against the fleet (see Matching rules in the README) and plans install, upgrade and uninstall actions against what it has installed (--installed, default nothing). With --device-id, the device record in devices/ is applied: its labels win over --label. When the device cannot be resolved, prints {"error":{"code","message"}} and exits 1.`;
  static override examples = [
    '<%= config.bin %> plan --dir fleet-example --label fleet=alpha --label arch=armv7l --json',
    '<%= config.bin %> plan --dir fleet-example --device-id pi-0042',
    '<%= config.bin %> plan --dir . --rev main --device-id pi-0042 --json',
    '<%= config.bin %> plan --dir fleet-example --device-id pi-0042 --installed status.yaml',
  ];
  static override flags = {
    dir: Flags.string({ summary: 'Fleet directory (a git repository when --rev is given).', default: '.' }),
    rev: Flags.string({
      summary:
        'Read the fleet from git objects at this revision (branch, tag or commit); uncommitted files are ignored.',
    }),
    label: Flags.string({
      summary: 'A device label k=v (repeatable; k= gives k the empty value).',
      multiple: true,
      default: [],
    }),
    'device-id': Flags.string({ summary: 'Device id: rollout buckets and its device record.', default: '' }),
    installed: Flags.string({ summary: 'YAML/JSON file of installed packets (a list, or a status.yaml).' }),
  };

  async run() {
    const { flags } = await this.parse(Plan);
    const labels = parseLabelArgs(flags.label);
    const fleet = await loadFleet(flags.dir, flags.rev);
    const installed = flags.installed ? await loadInstalled(flags.installed) : [];
    const plan = planDevice(fleet, flags['device-id'], labels, installed);
    if (!plan.ok) {
      const [first] = plan.errors;
      throw new GitfleetError(
        first?.code ?? 'no_matching_packet',
        plan.errors.map((e) => e.message).join('; '),
      );
    }
    if (!this.jsonEnabled()) this.log(renderPlan(plan));
    return planJson(plan);
  }
}
