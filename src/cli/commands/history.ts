import { Args, Flags } from '@oclif/core';
import { readDeviceHistory } from '../../git/read-device-history.js';
import { GitfleetCommand } from '../gitfleet-command.js';
import { historyJson, renderHistory } from '../present-status.js';

export default class History extends GitfleetCommand {
  static override summary =
    "Show one device's state commits, joined with the source commits and their signers.";
  static override description = `Walks the device's state ref (refs/gitfleet/state/<device-id>) newest first along first parents, up to --limit state commits. Each row gives when the device recorded it, its state and errors, whether the state commit is signed by the publicKey in the device's record at --rev (UNVERIFIED with the reason when not), and the source commit it observed: subject, author and signer. With --allowed-signers the source signer is checked against that file (as devices do) and named by its principals; without it a valid signature shows as "signed (not checked)". State refs are not fetched by an ordinary clone; fetch them first with git fetch origin '+refs/gitfleet/state/*:refs/gitfleet/state/*'.`;
  static override examples = [
    '<%= config.bin %> history pi-0042 --dir .',
    '<%= config.bin %> history pi-0042 --dir . --allowed-signers allowed_signers --limit 10 --json',
  ];
  static override args = {
    device: Args.string({ description: 'The device id.', required: true }),
  };
  static override flags = {
    dir: Flags.string({ summary: 'The fleet repository holding the state refs.', default: '.' }),
    rev: Flags.string({
      summary: "Source revision whose device record holds the device's key.",
      default: 'main',
    }),
    'allowed-signers': Flags.string({
      summary: 'allowed_signers file to check source commit signers against.',
    }),
    limit: Flags.integer({
      summary: 'State commits to show, newest first.',
      default: 50,
      min: 1,
      max: 100_000,
    }),
  };

  async run() {
    const { args, flags } = await this.parse(History);
    const history = await readDeviceHistory(flags.dir, args.device, {
      rev: flags.rev,
      limit: flags.limit,
      allowedSigners: flags['allowed-signers'],
    });
    if (!this.jsonEnabled()) this.log(renderHistory(history));
    return historyJson(history);
  }
}
