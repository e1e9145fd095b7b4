import { Flags } from '@oclif/core';
import { createAgentLog } from '../../../agent/agent-log.js';
import type { StepEvent } from '../../../agent/agent-ports.js';
import { loadAgentConfig } from '../../../agent/load-agent-config.js';
import { runAgent } from '../../../agent/run-agent.js';
import { GitfleetCommand } from '../../gitfleet-command.js';
import { renderPass } from '../../present-pass.js';

/**
 * Crash tests set GITFLEET_CRASH_AT to a step event (`installing:start`, `switching:done`, …): the agent
 * then kills itself with SIGKILL there, as a power cut would stop it.
 */
function crashAt(event: string | undefined) {
  return (at: StepEvent) => {
    if (at === event) process.kill(process.pid, 'SIGKILL');
  };
}

export default class AgentRun extends GitfleetCommand {
  static override summary = 'Reconcile this device with the fleet: once, or in a loop.';
  static override description = `Each pass syncs the source from the first reachable mirror, verifies the tip's signature (and freshness, and that it descends from the last applied commit) before reading anything, resolves this device's desired packets, installs, upgrades and uninstalls under a write-ahead journal (install → check → switch; a failing hook rolls back and marks that packet bad), and records status.yaml as a signed commit on refs/gitfleet/state/<id> when it changed. Without --once it repeats every poll.intervalSeconds (with jitter, backing off while passes fail for reasons that may clear by themselves, such as a mirror that is down) until SIGTERM, which stops it between steps. One agent per device (<state>/agent.lock): a --once pass beside a running agent exits with agent_locked; the looping agent waits for the lock instead. Logs go to stderr (JSON lines when it is not a terminal). With --once the exit code is 0 only when the device converged.`;
  static override examples = [
    '<%= config.bin %> agent run --config /etc/gitfleet/agent.yaml',
    '<%= config.bin %> agent run --config agent.yaml --once --dry-run',
    '<%= config.bin %> agent run --config agent.yaml --once --json',
  ];
  static override flags = {
    config: Flags.string({ summary: 'The agent configuration.', default: '/etc/gitfleet/agent.yaml' }),
    once: Flags.boolean({ summary: 'Run one pass and exit.', default: false }),
    'dry-run': Flags.boolean({
      summary: 'Sync, verify and plan, print the plan; install nothing, record nothing. Implies --once.',
      default: false,
    }),
  };

  async run() {
    const { flags } = await this.parse(AgentRun);
    const config = await loadAgentConfig(flags.config);
    const stop = new AbortController();
    const onSignal = (name: string) => () => stop.abort(new Error(`stopped by ${name}`));
    process.once('SIGTERM', onSignal('SIGTERM'));
    process.once('SIGINT', onSignal('SIGINT'));
    const once = flags.once || flags['dry-run'];
    const report = await runAgent(config, {
      once,
      dryRun: flags['dry-run'],
      signal: stop.signal,
      env: process.env,
      ports: { log: createAgentLog(), onStep: crashAt(process.env.GITFLEET_CRASH_AT) },
    });
    if (report && !this.jsonEnabled()) this.log(renderPass(report, config.device.id));
    if (once && report?.result !== 'converged') process.exitCode = 1;
    return report ?? null;
  }
}
