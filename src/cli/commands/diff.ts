import { Args, Flags } from '@oclif/core';
import { diffRevisions } from '../../git/diff-revisions.js';
import { GitfleetCommand } from '../gitfleet-command.js';
import { diffJson, renderDiffMarkdown } from '../present-diff.js';

export default class Diff extends GitfleetCommand {
  static override summary =
    'Show what a change to the fleet does to every device: installs, upgrades, uninstalls, failures.';
  static override description = `Resolves every device that has a record in devices/ at BASE and at HEAD (git revisions of the repository at --dir) and groups devices by identical change, each with the spec that caused it. Markdown (the default) is made for a pull request comment; --format json (or --json) prints every device id. Exits 0 unless --fail-on error is given and some device fails at HEAD that did not fail at BASE.`;
  static override examples = [
    '<%= config.bin %> diff origin/main HEAD --dir .',
    '<%= config.bin %> diff main pr-123 --dir fleet --format json',
    '<%= config.bin %> diff "$BASE_SHA" "$HEAD_SHA" --dir . --fail-on error > comment.md',
  ];
  static override args = {
    base: Args.string({ description: 'Revision before the change.', required: true }),
    head: Args.string({ description: 'Revision after the change.', required: true }),
  };
  static override flags = {
    dir: Flags.string({ summary: 'The fleet repository (a git repository).', default: '.' }),
    format: Flags.string({ summary: 'Output format.', options: ['md', 'json'], default: 'md' }),
    'fail-on': Flags.string({ summary: 'Exit 1 when a device newly fails at HEAD.', options: ['error'] }),
  };

  async run() {
    const { args, flags } = await this.parse(Diff);
    const { base, head, diff } = await diffRevisions(flags.dir, args.base, args.head);
    const json = { base, head, ...diffJson(diff) };
    if (flags['fail-on'] === 'error' && diff.newlyFailing > 0) process.exitCode = 1;
    if (!this.jsonEnabled())
      this.log(flags.format === 'json' ? JSON.stringify(json, null, 2) : renderDiffMarkdown(diff));
    return json;
  }
}
