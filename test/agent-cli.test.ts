import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acquireLock } from '../src/agent/acquire-lock.js';
import type { AgentConfig } from '../src/schema/agent-config.js';
import { AgentWorld, script, specYaml } from './support/agent-world.js';
import { git } from './support/git-fixture.js';
import { waitUntil } from './support/wait-until.js';
import { ensureBuilt, startCli } from './support/run-cli.js';

/** `gitfleet agent run` as a device runs it: a child process with its own lock, logs, metrics and exit code. */

ensureBuilt();

let world: AgentWorld;
let marker: string;
beforeAll(async () => {
  world = await AgentWorld.start();
  marker = join(world.dir, 'installing');
  const manifest = await world.packet({
    name: 'clock',
    labels: { version: '1.0.0' },
    files: {
      // Slow on purpose: the lock test starts a second agent while this hook runs.
      'install.sh': script(`touch ${marker}\nsleep 2`),
      'bin/clock': script('date'),
    },
    hooks: { install: './install.sh' },
  });
  world.publish({
    'packets/clock.yaml': manifest,
    'specs/clock.yaml': specYaml('clock', { role: 'clock' }, [{ name: 'clock', version: '^1' }]),
  });
});
afterAll(async () => {
  await world.close();
});

function configPath(config: AgentConfig): string {
  return join(config.dirs.state, '..', 'agent.yaml');
}

function stateRefs(): string {
  return git(join(world.dir, 'served', 'fleet.git'), ['for-each-ref', 'refs/gitfleet/state/']);
}

function startAgent(args: readonly string[]) {
  return startCli(['agent', 'run', ...args]);
}

/** Runs the agent to its end. Never spawnSync: the servers answering it live in this process. */
function agentRun(args: readonly string[]) {
  return startAgent(args).exited;
}

describe('gitfleet agent run', () => {
  it('--dry-run prints the plan and changes nothing: no packet folder, no state commit', async () => {
    const config = await world.device('cli-dry', { role: 'clock' });
    const result = await agentRun(['--config', configPath(config), '--dry-run']);
    expect(result.stdout).toContain('planned install clock');
    expect(result.code).toBe(0);
    expect(existsSync(join(config.dirs.root, 'clock'))).toBe(false);
    expect(existsSync(marker)).toBe(false);
    expect(stateRefs()).not.toContain('cli-dry');
  });

  it('two agents started together: one converges, the other exits with agent_locked naming the holder', async () => {
    const config = await world.device('cli-lock', { role: 'clock' });
    const first = startAgent(['--config', configPath(config), '--once', '--json']);
    await waitUntil(() => existsSync(marker), 'the first agent to run the install hook');
    const second = await agentRun(['--config', configPath(config), '--once', '--json']);
    expect(second.code).toBe(1);
    const refused = JSON.parse(second.stdout) as { error: { code: string; message: string } };
    expect(refused.error.code).toBe('agent_locked');
    expect(refused.error.message).toMatch(/another agent \(pid \d+\)/);

    const done = await first.exited;
    expect(done.code).toBe(0);
    const report = JSON.parse(done.stdout) as { result: string; actions: { outcome: string }[] };
    expect(report.result).toBe('converged');
    expect(report.actions.map((a) => a.outcome)).toEqual(['done']);
    expect(existsSync(join(config.dirs.state, 'agent.lock'))).toBe(false);

    // Logs on a pipe are JSON lines; the metrics file is there for node_exporter.
    expect(done.stderr.trim()).not.toBe('');
    const lines = done.stderr.trim().split('\n');
    for (const line of lines) {
      const entry = JSON.parse(line) as { level: unknown; msg: unknown; time: unknown };
      expect([typeof entry.level, typeof entry.msg, typeof entry.time]).toEqual([
        'string',
        'string',
        'string',
      ]);
    }
    const metrics = readFileSync(join(config.dirs.state, 'metrics', 'gitfleet.prom'), 'utf8');
    expect(metrics).toContain('gitfleet_last_pass_result{result="converged"} 1');
    expect(metrics).toContain('gitfleet_packets_installed 1');
    expect(metrics).toMatch(/gitfleet_seconds_since_last_successful_sync 0\n/);
    expect(stateRefs()).toContain('refs/gitfleet/state/cli-lock');
  });

  it('loops until SIGTERM, then stops cleanly and releases the lock', async () => {
    const config = await world.device('cli-loop', { role: 'other' });
    // The service waits while a one-off pass (here: this test) holds the lock, then runs.
    const held = await acquireLock(join(config.dirs.state, 'agent.lock'));
    const agent = startAgent(['--config', configPath(config)]);
    await sleep(1500);
    expect(existsSync(join(config.dirs.state, 'metrics'))).toBe(false);
    const released = new Date();
    await held.release();
    await waitUntil(() => existsSync(join(config.dirs.state, 'metrics', 'gitfleet.prom')), 'the first pass');
    await waitUntil(() => existsSync(join(config.dirs.state, 'agent.lock')), 'the lock');
    // The agent took the lock only once it was released: it waited, it did not run beside the holder.
    const owner = JSON.parse(readFileSync(join(config.dirs.state, 'agent.lock'), 'utf8')) as {
      pid: number;
      acquiredAt: string;
    };
    expect(owner.pid).toBe(agent.child.pid);
    expect(Date.parse(owner.acquiredAt)).toBeGreaterThanOrEqual(released.getTime() - 1000);
    agent.child.kill('SIGTERM');
    const done = await agent.exited;
    expect(done.code).toBe(0);
    expect(existsSync(join(config.dirs.state, 'agent.lock'))).toBe(false);
    expect(done.stderr).toContain('next pass in');
  });

  it('an unreachable source makes the pass progressing (retryable), exit 1, and the device untouched', async () => {
    const config = await world.device(
      'cli-offline',
      { role: 'clock' },
      {
        source: { remotes: ['http://127.0.0.1:9/fleet.git'] },
        state: { key: './device_ed25519', push: false },
      },
    );
    const result = await agentRun(['--config', configPath(config), '--once', '--json']);
    expect(result.code).toBe(1);
    const report = JSON.parse(result.stdout) as { result: string; errors: { code: string }[] };
    expect(report.result).toBe('progressing');
    expect(report.errors.map((e) => e.code)).toEqual(['source_unreachable']);
    expect(existsSync(join(config.dirs.root, 'clock'))).toBe(false);
  });

  it('refuses a damaged journal with invalid_manifest and a hint, and touches nothing', async () => {
    const config = await world.device('cli-damaged', { role: 'clock' });
    await agentRun(['--config', configPath(config), '--once']);
    const journal = join(config.dirs.state, 'journal.json');
    writeFileSync(journal, '{"version": 1, "installed": [');
    const result = await agentRun(['--config', configPath(config), '--once']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('error invalid_manifest');
    expect(result.stderr).toContain('journal.json is damaged');
    expect(readFileSync(journal, 'utf8')).toBe('{"version": 1, "installed": [');
  });
});
