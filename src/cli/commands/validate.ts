import { Flags } from '@oclif/core';
import { formatProblem, type Problem } from '../../schema/problem.js';
import { validateFleetSource } from '../../git/load-fleet.js';
import { GitfleetCommand } from '../gitfleet-command.js';

function problemJson(p: Problem) {
  return { code: p.code, message: p.message, ...(p.location ?? {}) };
}

export default class Validate extends GitfleetCommand {
  static override summary =
    'Check a fleet repository: schemas, unique packets, every device record resolvable.';
  static override description =
    'Prints every error and warning as file:line:col. Exits 0 when the fleet is valid (warnings allowed), 1 when it is not.';
  static override examples = [
    '<%= config.bin %> validate --dir fleet-example',
    '<%= config.bin %> validate --dir . --json',
    '<%= config.bin %> validate --dir . --rev origin/main',
  ];
  static override flags = {
    dir: Flags.string({ summary: 'Fleet directory (a git repository when --rev is given).', default: '.' }),
    rev: Flags.string({
      summary:
        'Read the fleet from git objects at this revision (branch, tag or commit); uncommitted files are ignored.',
    }),
  };

  async run() {
    const { flags } = await this.parse(Validate);
    const report = await validateFleetSource(flags.dir, flags.rev);
    if (!report.ok) process.exitCode = 1;
    if (!this.jsonEnabled()) {
      for (const p of [...report.errors, ...report.warnings]) this.log(formatProblem(p));
      const { packets, specs, devices } = report.counts;
      this.log(
        report.ok
          ? `${flags.dir}: valid (${packets} packets, ${specs} specs, ${devices} devices, ${report.warnings.length} warnings)`
          : `${flags.dir}: ${report.errors.length} errors, ${report.warnings.length} warnings`,
      );
    }
    return {
      ok: report.ok,
      errors: report.errors.map(problemJson),
      warnings: report.warnings.map(problemJson),
      counts: report.counts,
    };
  }
}
