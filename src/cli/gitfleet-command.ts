import { Command } from '@oclif/core';
import { GitfleetError } from '../schema/gitfleet-error.js';

/**
 * Base of every gitfleet command: `--json` prints one JSON document on stdout and nothing else; a
 * GitfleetError becomes `{"error":{"code","message"}}` with its exit code.
 */
export abstract class GitfleetCommand extends Command {
  static override enableJsonFlag = true;

  protected override toErrorJson(err: unknown): unknown {
    if (err instanceof GitfleetError) {
      return { error: { code: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}) } };
    }
    const message = err instanceof Error ? err.message : String(err);
    return { error: { code: 'usage', message } };
  }

  protected override async catch(err: Error & { exitCode?: number }): Promise<unknown> {
    if (err instanceof GitfleetError && !this.jsonEnabled()) {
      this.logToStderr(`error ${err.code}: ${err.message}${err.hint ? `\nhint: ${err.hint}` : ''}`);
      process.exitCode = err.exitCode;
      return undefined;
    }
    return super.catch(err);
  }
}
