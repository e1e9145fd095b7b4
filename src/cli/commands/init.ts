import { Args } from '@oclif/core';
import { initFleet } from '../../git/init-fleet.js';
import { GitfleetCommand } from '../gitfleet-command.js';

export default class Init extends GitfleetCommand {
  static override summary = 'Write a starter fleet repository.';
  static override description =
    'Creates fleet.yaml, an example spec and device record, and the JSON Schemas (schemas/) that editors use to check manifests as you type. Refuses a directory that already has a fleet.yaml.';
  static override examples = ['<%= config.bin %> init my-fleet'];
  static override args = {
    dir: Args.string({ description: 'Directory to create the fleet in.', default: '.' }),
  };

  async run() {
    const { args } = await this.parse(Init);
    const files = await initFleet(args.dir);
    if (!this.jsonEnabled())
      this.log(`wrote ${files.length} files to ${args.dir}:\n${files.map((f) => `  ${f}`).join('\n')}`);
    return { dir: args.dir, files };
  }
}
