import { Flags } from '@oclif/core';
import { initAgent } from '../../../agent/init-agent.js';
import { parseLabelArgs } from '../../../schema/parse-label-args.js';
import { GitfleetCommand } from '../../gitfleet-command.js';

export default class AgentInit extends GitfleetCommand {
  static override summary =
    "Create a device's key pair and a starter agent.yaml, and print its device record.";
  static override description = `Writes device_ed25519 (OpenSSH format, mode 0600), device_ed25519.pub and agent.yaml into --dir, then prints the devices/<id>.yaml record (labels and public key) to commit to the fleet repository: the device signs its state commits with this key, and status/history check them against the record. Put the fleet's allowed_signers file next to agent.yaml. Existing files are kept unless --force.`;
  static override examples = [
    '<%= config.bin %> agent init --dir /etc/gitfleet --id pi-0042 --label fleet=alpha --remote https://git.example.org/fleet.git',
  ];
  static override flags = {
    dir: Flags.string({ summary: 'Folder for agent.yaml and the key.', default: '.' }),
    id: Flags.string({ summary: 'The device id.', required: true }),
    label: Flags.string({ summary: 'A local label k=v (repeatable).', multiple: true, default: [] }),
    remote: Flags.string({
      summary: 'A git mirror of the fleet (repeatable, in order).',
      multiple: true,
      required: true,
    }),
    ref: Flags.string({ summary: 'The source branch.', default: 'main' }),
    'state-dir': Flags.string({
      summary: 'Journal, git objects and artifact cache.',
      default: '/var/lib/gitfleet',
    }),
    'root-dir': Flags.string({ summary: 'Where packets are installed.', default: '/opt/gitfleet' }),
    force: Flags.boolean({ summary: 'Replace an existing agent.yaml and key.', default: false }),
  };

  async run() {
    const { flags } = await this.parse(AgentInit);
    const result = await initAgent({
      dir: flags.dir,
      id: flags.id,
      labels: parseLabelArgs(flags.label),
      remotes: flags.remote,
      ref: flags.ref,
      stateDir: flags['state-dir'],
      rootDir: flags['root-dir'],
      force: flags.force,
    });
    this.log(
      `wrote ${result.config} and ${result.key}; commit this device record to the fleet:\n\n${result.record}`,
    );
    return result;
  }
}
