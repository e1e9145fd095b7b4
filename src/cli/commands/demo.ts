import { Flags } from '@oclif/core';
import { runDemo } from '../../agent/run-demo.js';
import { GitfleetCommand } from '../gitfleet-command.js';
import { renderDiffMarkdown } from '../present-diff.js';
import { renderHistory, renderStatus } from '../present-status.js';

export default class Demo extends GitfleetCommand {
  static override summary =
    'Run the whole loop on this machine: a signed fleet repository, two devices, an install and an upgrade.';
  static override description = `Builds fleet-example into a signed bare git repository in a new temp folder (every packet variant gets a small artifact packed from fleet-example/artifacts/), serves it with stock git http-backend and the artifacts with a static HTTP server on 127.0.0.1, and runs two devices with different labels (pi-0042, nuc-0001) through one pass each, as \`gitfleet agent run --once\` child processes installing into folders below the temp folder. It then commits a release (vpn 4.1.1, which spec eu-sites picks), runs both devices again (the upgrade) and prints \`diff\`, \`status\` and \`history\` of the repository. Needs Node and git only. The servers stop at the end and the folder is removed unless --keep. With --json the narration goes to stderr and stdout holds the result. Exits 1 when a pass did not converge or the upgrade did not happen.`;
  static override examples = [
    '<%= config.bin %> demo',
    '<%= config.bin %> demo --keep',
    '<%= config.bin %> demo --json',
  ];
  static override flags = {
    keep: Flags.boolean({
      summary: "Keep the demo's folder: the repository, the artifacts and both devices' roots.",
      default: false,
    }),
  };

  async run() {
    const { flags } = await this.parse(Demo);
    const result = await runDemo({
      keep: flags.keep,
      // With --json, stdout holds the result only: the narration still goes out, on stderr.
      log: (line) => (this.jsonEnabled() ? process.stderr.write(`${line}\n`) : this.log(line)),
      present: { diff: (diff) => renderDiffMarkdown(diff), status: renderStatus, history: renderHistory },
    });
    if (!result.ok) process.exitCode = 1;
    return result;
  }
}
