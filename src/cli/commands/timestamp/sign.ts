import { Flags } from '@oclif/core';
import { signTimestampIn } from '../../../git/timestamp.js';
import { GitfleetCommand } from '../../gitfleet-command.js';

export default class TimestampSign extends GitfleetCommand {
  static override summary = 'Sign a freshness timestamp for the source tip (run from cron or CI).';
  static override description = `Writes a signed commit on refs/gitfleet/timestamp naming the tip of --rev and an expiry. When fleet.yaml sets trust.timestamp: true, devices refuse a tip whose timestamp has expired (stale_revision), so a mirror that freezes the fleet is noticed. Push the ref to the mirrors afterwards: git push origin refs/gitfleet/timestamp. The key must be in the devices' allowed_signers.`;
  static override examples = [
    '<%= config.bin %> timestamp sign --dir . --key ~/.ssh/fleet_release --valid-for 24 && git push origin refs/gitfleet/timestamp',
  ];
  static override flags = {
    dir: Flags.string({ summary: 'The fleet repository (a git repository).', default: '.' }),
    rev: Flags.string({ summary: 'The source branch or revision to vouch for.', default: 'main' }),
    key: Flags.string({
      summary: 'SSH private key (OpenSSH format, unencrypted) to sign with.',
      required: true,
    }),
    'valid-for': Flags.integer({
      summary: 'Hours until the timestamp expires.',
      default: 24,
      min: 1,
      max: 24 * 366,
    }),
    name: Flags.string({ summary: 'Signer name in the timestamp commit.', default: 'gitfleet timestamp' }),
    email: Flags.string({
      summary: 'Signer email in the timestamp commit.',
      default: 'timestamp@gitfleet.invalid',
    }),
  };

  async run() {
    const { flags } = await this.parse(TimestampSign);
    const result = await signTimestampIn(flags.dir, {
      rev: flags.rev,
      keyPath: flags.key,
      validForHours: flags['valid-for'],
      signer: { name: flags.name, email: flags.email },
      now: new Date(),
    });
    this.log(`${result.ref} ${result.commit}: ${result.source} is current until ${result.expires}`);
    return result;
  }
}
