import { Flags } from '@oclif/core';
import { readDeviceStates } from '../../git/read-device-states.js';
import { GitfleetCommand } from '../gitfleet-command.js';
import { renderStatus, statusJson } from '../present-status.js';

export default class Status extends GitfleetCommand {
  static override summary =
    "Show every device's latest recorded state: converged, stalled, behind, unverified.";
  static override description = `Reads every state ref (refs/gitfleet/state/<device-id>) in the repository at --dir: the device's latest state commit, its status.yaml (state, errors, the observed revision) and how many source commits it is behind --rev. Each state commit's signature is checked against the publicKey in the device's record at --rev; rows that do not verify are flagged UNVERIFIED with the reason, because anyone who can push a ref can write a state. Devices with a record but no state ref are listed as never reported. State refs are not fetched by an ordinary clone; fetch them first with git fetch origin '+refs/gitfleet/state/*:refs/gitfleet/state/*' (from the state repository, when devices push to a separate one).`;
  static override examples = [
    "git fetch origin '+refs/gitfleet/state/*:refs/gitfleet/state/*' && <%= config.bin %> status --dir .",
    '<%= config.bin %> status --dir fleet --rev origin/main --json',
  ];
  static override flags = {
    dir: Flags.string({ summary: 'The fleet repository holding the state refs.', default: '.' }),
    rev: Flags.string({
      summary: 'Source revision: device records (and keys) come from it, and behind counts up to it.',
      default: 'main',
    }),
  };

  async run() {
    const { flags } = await this.parse(Status);
    const states = await readDeviceStates(flags.dir, { rev: flags.rev });
    if (!this.jsonEnabled()) this.log(renderStatus(states));
    return statusJson(states);
  }
}
