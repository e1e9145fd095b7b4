import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StepEvent } from '../src/agent/agent-ports.js';
import { maxInterruptions, recoveryTable, type Recovery } from '../src/agent/agent-steps.js';
import { runPass } from '../src/agent/run-pass.js';
import type { AgentConfig } from '../src/schema/agent-config.js';
import type { AgentStep, Journal } from '../src/schema/parse-journal.js';
import { AgentWorld, script, specYaml, type TestPacket } from './support/agent-world.js';
import { cliEnv, ensureBuilt, startCli } from './support/run-cli.js';
import { waitUntil } from './support/wait-until.js';

/**
 * Crash tests (HOUSE-STYLE 11): the agent runs as a real child process (`gitfleet agent run --once --json`),
 * is killed with SIGKILL at a step (GITFLEET_CRASH_AT, or from outside in the middle of a hook or an
 * extraction), is restarted, and the files on disk must show the device converged: one `current` per
 * packet, one slot, no staging folders or temp links, an empty journal step, the desired version current,
 * and the hooks run again exactly as the recovery table says.
 */

type Scenario = 'upgrade' | 'uninstall';

interface CrashRow {
  killIn: StepEvent;
  /** upgrade: `app` 1.0.0 installed, the fleet moves to 2.0.0. uninstall: the spec stops targeting it. */
  scenario: Scenario;
  expect: {
    /** The step journal.json holds after the kill. */
    journalStep: AgentStep | null;
    /** The recovery table's row for that step ('none': nothing was in flight). */
    recovery: Recovery | 'none';
    /** The version `current` names right after the kill; null when the packet folder is gone. */
    currentAfterKill: '1.0.0' | '2.0.0' | null;
    /** Slots on disk right after the kill (a new slot not yet current counts). */
    slotsAfterKill: number;
    /** Runs of the scenario's hook (install 2.0.0 or uninstall 1.0.0): in the killed run, in the restart. */
    hookRuns: [killed: number, restart: number];
    /** Whether the restart plans the action again (retry, undo) or finds it done (finish, none). */
    replans: boolean;
    /** Whether the restart makes a state commit (only not when the killed run already pushed one). */
    stateCommit: boolean;
  };
}

function row(
  killIn: StepEvent,
  scenario: Scenario,
  journalStep: AgentStep | null,
  recovery: Recovery | 'none',
  currentAfterKill: '1.0.0' | '2.0.0' | null,
  slotsAfterKill: number,
  hookRuns: [killed: number, restart: number],
  replans: boolean,
  stateCommit: boolean,
): CrashRow {
  return {
    killIn,
    scenario,
    expect: { journalStep, recovery, currentAfterKill, slotsAfterKill, hookRuns, replans, stateCommit },
  };
}

// Notes: fetching:done is after the download; installing:done after the install hook; switching:start
// before the switch; switching:done after it, before the previous slot is removed (the sweep removes
// it); recording:start before the state commit; uninstalling:done after the uninstall hook (it runs again).
// prettier-ignore
const table: CrashRow[] = [
  //   killIn                  scenario     journalStep     recovery  current  slots hookRuns replans stateCommit
  row('fetching:start',       'upgrade',   'fetching',     'retry',  '1.0.0', 1,    [0, 1],  true,   true),
  row('fetching:done',        'upgrade',   'fetching',     'retry',  '1.0.0', 1,    [0, 1],  true,   true),
  row('extracting:start',     'upgrade',   'extracting',   'undo',   '1.0.0', 1,    [0, 1],  true,   true),
  row('extracting:done',      'upgrade',   'extracting',   'undo',   '1.0.0', 2,    [0, 1],  true,   true),
  row('installing:start',     'upgrade',   'installing',   'undo',   '1.0.0', 2,    [0, 1],  true,   true),
  row('installing:done',      'upgrade',   'installing',   'undo',   '1.0.0', 2,    [1, 1],  true,   true),
  row('checking:start',       'upgrade',   'checking',     'undo',   '1.0.0', 2,    [1, 1],  true,   true),
  row('checking:done',        'upgrade',   'checking',     'undo',   '1.0.0', 2,    [1, 1],  true,   true),
  row('switching:start',      'upgrade',   'switching',    'finish', '1.0.0', 2,    [1, 0],  false,  true),
  row('switching:done',       'upgrade',   null,           'none',   '2.0.0', 2,    [1, 0],  false,  true),
  row('recording:start',      'upgrade',   null,           'none',   '2.0.0', 1,    [1, 0],  false,  true),
  row('recording:done',       'upgrade',   null,           'none',   '2.0.0', 1,    [1, 0],  false,  false),
  row('uninstalling:start',   'uninstall', 'uninstalling', 'retry',  '1.0.0', 1,    [0, 1],  true,   true),
  row('uninstalling:done',    'uninstall', 'uninstalling', 'retry',  '1.0.0', 1,    [1, 1],  true,   true),
  row('removing:start',       'uninstall', 'removing',     'finish', '1.0.0', 1,    [1, 0],  false,  true),
  row('removing:done',        'uninstall', null,           'none',   null,    0,    [1, 0],  false,  true),
];

interface Device {
  id: string;
  config: AgentConfig;
  /** Its agent.yaml. */
  file: string;
}

/** What `agent run --once --json` prints, as far as these tests read it. */
interface RunJson {
  result: string;
  actions: { type: string; name: string; outcome: string }[];
  errors: { code: string; message: string; packet?: string }[];
  recorded?: { commit: string; changed: boolean; pushed: boolean };
}

let world: AgentWorld;
let hookLog: string;
let hookMarker: string;
const devices = new Map<string, Device>();

/** A packet whose hooks append `<hook> <version> <data folder>` to one log outside every device. */
function loggedPacket(
  name: string,
  version: string,
  install = '',
  files: TestPacket['files'] = {},
): TestPacket {
  const logged = (hook: string) => `echo "${hook} $GITFLEET_VERSION $GITFLEET_DATA" >> ${hookLog}`;
  return {
    name,
    labels: { version },
    files: {
      ...files,
      VERSION: `${version}\n`,
      'install.sh': script(`${logged('install')}\n${install}`),
      'check.sh': script(`${logged('check')}\ntest -f VERSION`),
      'uninstall.sh': script(logged('uninstall')),
    },
    hooks: { install: './install.sh', check: './check.sh', uninstall: './uninstall.sh', timeoutSeconds: 60 },
  };
}

const bulkEntries = 600;

/** A few MB of incompressible text in many entries: an extraction that takes long enough to be cut. */
function bulkFiles(): TestPacket['files'] {
  const files: TestPacket['files'] = {};
  for (let i = 0; i < bulkEntries; i += 1)
    files[`blob/${i % 20}/${i}.txt`] = randomBytes(6144).toString('base64');
  return files;
}

/** Runs `gitfleet agent run --once --json` as a child process; `crashAt` makes it SIGKILL itself there. */
function startAgent(device: Device, crashAt?: StepEvent) {
  const env = cliEnv();
  delete env.GITFLEET_CRASH_AT;
  if (crashAt !== undefined) env.GITFLEET_CRASH_AT = crashAt;
  return startCli(['agent', 'run', '--config', device.file, '--once', '--json'], env, 45_000);
}

/** A run that must end converged: exit 0 and `result: converged` in its JSON. */
async function runConverged(device: Device): Promise<RunJson> {
  const run = await startAgent(device).exited;
  expect(run.signal, run.stderr).toBeNull();
  expect(run.code, run.stderr).toBe(0);
  const report = JSON.parse(run.stdout) as RunJson;
  expect(report.result).toBe('converged');
  return report;
}

function readJournal(device: Device): Journal {
  return JSON.parse(readFileSync(join(device.config.dirs.state, 'journal.json'), 'utf8')) as Journal;
}

/** Lines `<hook> <version> <data>` of this device's packet in the shared hook log. */
function hookRuns(device: Device, hook: string, packet: string, version: string): number {
  const line = `${hook} ${version} ${join(device.config.dirs.root, packet, 'data')}`;
  const text = existsSync(hookLog) ? readFileSync(hookLog, 'utf8') : '';
  return text.split('\n').filter((l) => l === line).length;
}

/** The version in the slot `current` names, or null when the packet has no folder. */
function currentVersion(device: Device, packet: string): string | null {
  const file = join(device.config.dirs.root, packet, 'current', 'VERSION');
  return existsSync(join(device.config.dirs.root, packet)) ? readFileSync(file, 'utf8').trim() : null;
}

/** Files below `dir`, however deep. */
function countFiles(dir: string): number {
  return readdirSync(dir, { withFileTypes: true }).reduce(
    (n, entry) => n + (entry.isDirectory() ? countFiles(join(dir, entry.name)) : 1),
    0,
  );
}

function listing(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).sort() : [];
}

/**
 * The device holds exactly `packets` (name → version): per packet one `current` naming `slots/<16 hex>`,
 * that one slot and nothing else in `slots/` (no old slot, no hidden staging folder), no temp links; no
 * other packet folder; the journal lists them with no step in flight and no temp file beside it.
 */
function expectConverged(device: Device, packets: Record<string, string>): void {
  const root = device.config.dirs.root;
  expect(listing(root)).toEqual(Object.keys(packets).sort());
  for (const [name, version] of Object.entries(packets)) {
    const dir = join(root, name);
    const current = readlinkSync(join(dir, 'current'));
    expect(current).toMatch(/^slots\/[0-9a-f]{16}$/);
    expect(listing(join(dir, 'slots'))).toEqual([current.slice('slots/'.length)]);
    expect(listing(dir)).toEqual(['current', 'data', 'slots']);
    expect(currentVersion(device, name)).toBe(version);
  }
  const journal = readJournal(device);
  expect(journal.step).toBeNull();
  expect(Object.fromEntries(journal.installed.map((r) => [r.name, r.labels.version]))).toEqual(packets);
  expect(listing(device.config.dirs.state).filter((n) => n.endsWith('.tmp'))).toEqual([]);
}

/** Waits until `check` holds, looking every 10 ms, for at most `ms`. */
const specialDevices = ['crash-loop', 'crash-mid-hook', 'crash-mid-extract'] as const;

beforeAll(async () => {
  ensureBuilt();
  world = await AgentWorld.start();
  hookLog = join(world.dir, 'hooks.log');
  hookMarker = join(world.dir, 'mid-hook.pid');
  // The first run of sleeper 2.0.0's install hook says where it is, then hangs until killed.
  const hang = `if [ ! -e ${hookMarker} ]; then echo $$ > ${hookMarker}.tmp; mv ${hookMarker}.tmp ${hookMarker}; sleep 30; fi`;
  const manifests: Record<string, string> = {
    'packets/app-1.0.0.yaml': await world.packet(loggedPacket('app', '1.0.0')),
    'packets/app-2.0.0.yaml': await world.packet(loggedPacket('app', '2.0.0')),
    'packets/looper-1.0.0.yaml': await world.packet(loggedPacket('looper', '1.0.0')),
    // The hook's parent is the agent's node process: a hook that takes the device down with it.
    'packets/looper-2.0.0.yaml': await world.packet(loggedPacket('looper', '2.0.0', 'kill -9 $PPID')),
    'packets/sleeper-1.0.0.yaml': await world.packet(loggedPacket('sleeper', '1.0.0')),
    'packets/sleeper-2.0.0.yaml': await world.packet(loggedPacket('sleeper', '2.0.0', hang)),
    'packets/bulky-1.0.0.yaml': await world.packet(loggedPacket('bulky', '1.0.0')),
    'packets/bulky-2.0.0.yaml': await world.packet(loggedPacket('bulky', '2.0.0', '', bulkFiles())),
  };
  const specs = (version: string) => ({
    'specs/crash-upgrade.yaml': specYaml('crash-upgrade', { crash: 'upgrade' }, [{ name: 'app', version }]),
    'specs/crash-loop.yaml': specYaml('crash-loop', { crash: 'crash-loop' }, [{ name: 'looper', version }]),
    'specs/crash-mid-hook.yaml': specYaml('crash-mid-hook', { crash: 'crash-mid-hook' }, [
      { name: 'sleeper', version },
    ]),
    'specs/crash-mid-extract.yaml': specYaml('crash-mid-extract', { crash: 'crash-mid-extract' }, [
      { name: 'bulky', version },
    ]),
  });
  const uninstallIds = table.filter((r) => r.scenario === 'uninstall').map((r) => rowId(r));
  world.publish({
    ...manifests,
    ...specs('^1'),
    'specs/crash-uninstall.yaml': specYaml('crash-uninstall', { crash: 'uninstall' }, [
      { name: 'app', version: '^1' },
    ]),
    ...Object.fromEntries(
      uninstallIds.map((id) => [`devices/${id}.yaml`, `kind: Device\nid: ${id}\nallowEmpty: true\n`]),
    ),
  });

  const wanted = [
    ...table.map((r) => ({ id: rowId(r), crash: r.scenario })),
    ...specialDevices.map((id) => ({ id, crash: id })),
  ];
  for (const { id, crash } of wanted) {
    const config = await world.device(id, { crash });
    devices.set(id, { id, config, file: join(world.dir, 'devices', id, 'agent.yaml') });
  }
  // Version 1 everywhere, in-process (cheaper than a child each), a few devices at a time.
  const all = [...devices.values()];
  for (let i = 0; i < all.length; i += 4) {
    const reports = await Promise.all(all.slice(i, i + 4).map((d) => runPass(d.config, { env: {} })));
    for (const report of reports) expect(report.errors).toEqual([]);
  }
  world.publish({ ...specs('^2'), 'specs/crash-uninstall.yaml': null }, 'Move the crash fleet on');
}, 120_000);

afterAll(async () => {
  await world?.close();
});

function rowId(row: CrashRow): string {
  return `crash-${row.killIn.replace(':', '-')}`;
}

function device(id: string): Device {
  const found = devices.get(id);
  if (!found) throw new Error(`no device ${id}`);
  return found;
}

/** Generous: up to five tests (vitest's maxConcurrency) start agents at once, each start a second of CPU. */
const slow = 150_000;

// Every test has its own device, so they run side by side: each agent start is mostly node loading code.
// The longest chains of restarts are registered first, so they start first.
describe.concurrent('agent crash: the loop breaker', () => {
  it(
    `an install hook that kills the agent every time is given up after ${maxInterruptions} interruptions`,
    async () => {
      const dev = device('crash-loop');
      const slotBefore = readlinkSync(join(dev.config.dirs.root, 'looper', 'current'));
      for (let run = 1; run <= maxInterruptions; run += 1) {
        const killed = await startAgent(dev).exited;
        expect(killed.signal, `run ${run}: ${killed.stderr}`).toBe('SIGKILL');
        expect(hookRuns(dev, 'install', 'looper', '2.0.0')).toBe(run);
        expect(readJournal(dev).step?.step).toBe('installing');
      }

      for (const attempt of ['after the last restart', 'on a further run']) {
        const run = await startAgent(dev).exited;
        expect(run.signal, `${attempt}: ${run.stderr}`).toBeNull();
        expect(run.code, attempt).toBe(1);
        const report = JSON.parse(run.stdout) as RunJson;
        expect(report.result, attempt).toBe('stalled');
        expect(report.errors, attempt).toMatchObject([{ code: 'hook_failed', packet: 'looper' }]);
        expect(report.errors[0]?.message).toContain(`interrupted ${maxInterruptions} times while installing`);
        expect(hookRuns(dev, 'install', 'looper', '2.0.0'), attempt).toBe(maxInterruptions);
        expectConverged(dev, { looper: '1.0.0' });
        expect(readlinkSync(join(dev.config.dirs.root, 'looper', 'current'))).toBe(slotBefore);
      }
    },
    slow,
  );
});

describe.concurrent('agent crash: killed from outside, in the middle of the work', () => {
  it(
    'killed while the install hook runs: the new slot is undone and the hook runs again',
    async () => {
      const dev = device('crash-mid-hook');
      const { child, exited } = startAgent(dev);
      let hookPid = 0;
      try {
        await waitUntil(() => existsSync(hookMarker), 'the install hook to start', {
          timeoutMs: 30_000,
          pollMs: 10,
        });
        hookPid = Number(readFileSync(hookMarker, 'utf8'));
        expect(hookPid).toBeGreaterThan(1);
      } finally {
        child.kill('SIGKILL');
      }
      const killed = await exited;
      expect(killed.signal).toBe('SIGKILL');
      try {
        // The hook leads its own process group: it was still running when the agent died, and outlives it.
        expect(() => process.kill(-hookPid, 0)).not.toThrow();
        await restartMidHook(dev, hookPid);
      } finally {
        try {
          process.kill(-hookPid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
    },
    slow,
  );

  /** Processes of process group `group` that are not zombies, from /proc. */
  function liveGroupMembers(group: number): string[] {
    return readdirSync('/proc')
      .filter((entry) => /^\d+$/.test(entry))
      .filter((pid) => {
        try {
          const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
          const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
          return Number(fields[2]) === group && fields[0] !== 'Z';
        } catch {
          return false;
        }
      });
  }

  /** The restart stops the orphaned hook the journal names, undoes its step and installs again. */
  async function restartMidHook(dev: Device, hookPid: number): Promise<void> {
    expect(() => process.kill(-hookPid, 0)).not.toThrow();
    expect(readJournal(dev).step?.step).toBe('installing');
    expect(readJournal(dev).step?.hookId).toMatch(/^[0-9a-f]{16}$/);
    expect(currentVersion(dev, 'sleeper')).toBe('1.0.0');
    expect(listing(join(dev.config.dirs.root, 'sleeper', 'slots'))).toHaveLength(2);
    expect(hookRuns(dev, 'install', 'sleeper', '2.0.0')).toBe(1);

    const report = await runConverged(dev);
    // Killed by the recovery (the hook sleeps 30 s when nobody kills it); a zombie waiting to be reaped
    // by whoever inherited it counts as gone.
    expect(liveGroupMembers(hookPid)).toEqual([]);
    expect(report.actions.map((a) => `${a.outcome} ${a.type} ${a.name}`)).toEqual(['done upgrade sleeper']);
    expect(hookRuns(dev, 'install', 'sleeper', '2.0.0')).toBe(2);
    expectConverged(dev, { sleeper: '2.0.0' });
  }

  it(
    'killed while extracting: the hidden staging folder is swept and the slot extracted again',
    async () => {
      const dev = device('crash-mid-extract');
      const slots = join(dev.config.dirs.root, 'bulky', 'slots');
      const { child, exited } = startAgent(dev);
      const staging = () => readdirSync(slots).find((n) => n.startsWith('.'));
      const staged = () => {
        const dir = staging();
        return dir === undefined ? 0 : countFiles(join(slots, dir));
      };
      try {
        await waitUntil(() => staged() >= 50 || child.exitCode !== null, 'the extraction to be under way', {
          timeoutMs: 30_000,
          pollMs: 10,
        });
      } finally {
        child.kill('SIGKILL');
      }
      const killed = await exited;
      expect(killed.signal).toBe('SIGKILL');
      // Part of the entries unpacked, the folder not yet renamed into place: the agent died mid-extract.
      expect(staged()).toBeGreaterThanOrEqual(50);
      expect(staged()).toBeLessThan(bulkEntries);
      expect(readJournal(dev).step?.step).toBe('extracting');
      expect(currentVersion(dev, 'bulky')).toBe('1.0.0');
      expect(hookRuns(dev, 'install', 'bulky', '2.0.0')).toBe(0);

      const report = await runConverged(dev);
      expect(report.actions.map((a) => `${a.outcome} ${a.type} ${a.name}`)).toEqual(['done upgrade bulky']);
      expect(hookRuns(dev, 'install', 'bulky', '2.0.0')).toBe(1);
      expectConverged(dev, { bulky: '2.0.0' });
      expect(listing(join(dev.config.dirs.root, 'bulky', 'current', 'blob'))).toHaveLength(20);
    },
    slow,
  );
});

describe.concurrent('agent crash table: SIGKILL at a step, restart, converged on disk', () => {
  it.each(table)(
    'killed at $killIn during an $scenario',
    async (row) => {
      const dev = device(rowId(row));
      const [hook, version] = row.scenario === 'upgrade' ? ['install', '2.0.0'] : ['uninstall', '1.0.0'];
      const before = world.stateTip(dev.id);

      const killed = await startAgent(dev, row.killIn).exited;
      expect(killed.signal, killed.stderr).toBe('SIGKILL');
      const step = readJournal(dev).step;
      expect(step?.step ?? null).toBe(row.expect.journalStep);
      expect(step ? recoveryTable[step.step].recovery : 'none').toBe(row.expect.recovery);
      expect(currentVersion(dev, 'app')).toBe(row.expect.currentAfterKill);
      expect(listing(join(dev.config.dirs.root, 'app', 'slots'))).toHaveLength(row.expect.slotsAfterKill);
      expect(hookRuns(dev, hook, 'app', version)).toBe(row.expect.hookRuns[0]);
      // Only a kill after the state commit was pushed leaves the remote's state tip moved.
      expect(world.stateTip(dev.id) !== before).toBe(row.killIn === 'recording:done');

      const report = await runConverged(dev);
      expect(report.errors).toEqual([]);
      const action = row.scenario === 'upgrade' ? 'done upgrade app' : 'done uninstall app';
      expect(report.actions.map((a) => `${a.outcome} ${a.type} ${a.name}`)).toEqual(
        row.expect.replans ? [action] : [],
      );
      expect(hookRuns(dev, hook, 'app', version)).toBe(row.expect.hookRuns[0] + row.expect.hookRuns[1]);
      expectConverged(dev, row.scenario === 'upgrade' ? { app: '2.0.0' } : {});
      expect(report.recorded?.changed).toBe(row.expect.stateCommit);
      expect(report.recorded?.pushed).toBe(true);
      expect(world.stateTip(dev.id)).toBe(report.recorded?.commit);
      if (row.scenario === 'uninstall') expect(existsSync(join(dev.config.dirs.root, 'app'))).toBe(false);
    },
    slow,
  );
});
