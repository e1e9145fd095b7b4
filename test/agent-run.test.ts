import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runPass, type PassReport } from '../src/agent/run-pass.js';
import type { AgentConfig } from '../src/schema/agent-config.js';
import { AgentWorld, script, specYaml, type TestPacket } from './support/agent-world.js';
import { git } from './support/git-fixture.js';

/**
 * The agent end to end: a real signed fleet served by stock `git http-backend`, real artifacts over HTTP,
 * real hooks, real folders. Each test asserts the files on disk, the journal's effects and the state ref.
 */

let world: AgentWorld;
beforeAll(async () => {
  world = await AgentWorld.start();
});
afterAll(async () => {
  await world.close();
});

/** A hook that appends `<hook> <version> <previous slot>` to a log outside the device, then runs `extra`. */
function loggingHook(log: string, hook: string, extra = ''): string {
  return `echo "${hook} $GITFLEET_VERSION\${GITFLEET_PREVIOUS_SLOT:+ \${GITFLEET_PREVIOUS_SLOT##*/}}" >> ${log}\n${extra}`;
}

function hookLines(log: string): string[] {
  return existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : [];
}

function app(
  name: string,
  version: string,
  log: string,
  hooks: Partial<Record<string, string>> = {},
): TestPacket {
  return {
    name,
    labels: { version },
    files: {
      [`bin/${name}`]: script(`echo ${name} ${version}`),
      'install.sh': script(
        hooks.install ?? `${loggingHook(log, 'install')}\necho ${version} > "$GITFLEET_DATA/installed"`,
      ),
      'check.sh': script(hooks.check ?? `${loggingHook(log, 'check')}\ntest -x bin/${name}`),
      'uninstall.sh': script(hooks.uninstall ?? loggingHook(log, 'uninstall')),
    },
    hooks: { install: './install.sh', check: './check.sh', uninstall: './uninstall.sh', timeoutSeconds: 5 },
  };
}

/** `<root>/<name>/current` resolved to its slot folder name. */
function currentOf(config: AgentConfig, name: string): string {
  return readlinkSync(join(config.dirs.root, name, 'current'));
}

function slotsOf(config: AgentConfig, name: string): string[] {
  return readdirSync(join(config.dirs.root, name, 'slots')).sort();
}

function pass(config: AgentConfig): Promise<PassReport> {
  return runPass(config, { env: {} });
}

describe('agent run: converge, stay put, upgrade, uninstall', () => {
  let config: AgentConfig;
  let log: string;
  let first: string;

  beforeAll(async () => {
    log = join(world.dir, 'hooks-converge.log');
    const runtime = await world.packet(app('runtime', '2.0.0', log));
    const sensor = await world.packet({
      ...app('sensor', '1.0.0', log),
      requires: [{ name: 'runtime', version: '^2' }],
    });
    world.publish({
      'packets/runtime.yaml': runtime,
      'packets/sensor-1.0.0.yaml': sensor,
      'specs/base.yaml': specYaml('base', { role: 'sensor' }, [{ name: 'sensor', version: '^1' }]),
    });
    config = await world.device('dev-a', { role: 'sensor' });
  });

  it('converges from empty: dependencies first, each in its slot with current and data', async () => {
    const report = await pass(config);
    expect(report.errors).toEqual([]);
    expect(report.result).toBe('converged');
    expect(report.actions.map((a) => `${a.outcome} ${a.type} ${a.name}`)).toEqual([
      'done install runtime',
      'done install sensor',
    ]);
    for (const name of ['runtime', 'sensor']) {
      const current = currentOf(config, name);
      expect(current).toMatch(/^slots\/[0-9a-f]{16}$/);
      expect(slotsOf(config, name)).toEqual([current.slice('slots/'.length)]);
      expect(existsSync(join(config.dirs.root, name, 'current', 'bin', name))).toBe(true);
      expect(readFileSync(join(config.dirs.root, name, 'data', 'installed'), 'utf8').trim()).toMatch(/^\d/);
    }
    expect(hookLines(log)).toEqual(['install 2.0.0', 'check 2.0.0', 'install 1.0.0', 'check 1.0.0']);
    expect(report.status.packets.map((p) => p.name)).toEqual(['runtime', 'sensor']);
    expect(report.recorded?.changed).toBe(true);
    expect(report.recorded?.pushed).toBe(true);
    first = report.recorded?.commit ?? '';
    expect(world.stateTip('dev-a')).toBe(first);
    const shown = git(join(world.dir, 'served', 'fleet.git'), ['show', `${first}:status.yaml`]);
    expect(shown).toContain('reason: "Converged"');
    expect(shown).toContain(`observedRevision: "${report.revision}"`);
  });

  it('a second pass with nothing changed plans nothing, runs no hook and makes no state commit', async () => {
    const hooksBefore = hookLines(log).length;
    const report = await pass(config);
    expect(report.result).toBe('converged');
    expect(report.actions).toEqual([]);
    expect(hookLines(log)).toHaveLength(hooksBefore);
    expect(report.recorded?.changed).toBe(false);
    expect(report.recorded?.commit).toBe(first);
    expect(world.stateTip('dev-a')).toBe(first);
  });

  it('upgrades into a new slot, keeps data, and removes the old slot', async () => {
    const before = currentOf(config, 'sensor');
    const sensor2 = await world.packet({
      ...app('sensor', '1.1.0', log),
      requires: [{ name: 'runtime', version: '^2' }],
    });
    world.publish({ 'packets/sensor-1.1.0.yaml': sensor2 });
    const report = await pass(config);
    expect(report.actions.map((a) => `${a.outcome} ${a.type} ${a.name}`)).toEqual(['done upgrade sensor']);
    const after = currentOf(config, 'sensor');
    expect(after).not.toBe(before);
    expect(slotsOf(config, 'sensor')).toEqual([after.slice('slots/'.length)]);
    expect(hookLines(log).slice(-2)).toEqual([
      `install 1.1.0 ${before.slice('slots/'.length)}`,
      `check 1.1.0 ${before.slice('slots/'.length)}`,
    ]);
    // data/ persists across upgrades: the new install hook overwrote the same file.
    expect(readFileSync(join(config.dirs.root, 'sensor', 'data', 'installed'), 'utf8').trim()).toBe('1.1.0');
    expect(report.status.packets.find((p) => p.name === 'sensor')?.labels.version).toBe('1.1.0');
  });

  it('uninstalls (dependents first, hook run, folder and data gone) when the spec stops targeting it', async () => {
    world.publish({ 'specs/base.yaml': specYaml('base', { role: 'other' }, [{ name: 'sensor' }]) });
    const allowEmpty = world.publish({
      'devices/dev-a.yaml': 'kind: Device\nid: dev-a\nallowEmpty: true\n',
    });
    const report = await pass(config);
    expect(report.revision).toBe(allowEmpty);
    expect(report.actions.map((a) => `${a.outcome} ${a.type} ${a.name}`)).toEqual([
      'done uninstall sensor',
      'done uninstall runtime',
    ]);
    expect(hookLines(log).slice(-2)).toEqual(['uninstall 1.1.0', 'uninstall 2.0.0']);
    expect(existsSync(join(config.dirs.root, 'sensor'))).toBe(false);
    expect(existsSync(join(config.dirs.root, 'runtime'))).toBe(false);
    expect(report.status.packets).toEqual([]);
    expect(report.result).toBe('converged');
  });
});

describe('agent run: failures roll back and are remembered', () => {
  let config: AgentConfig;
  let log: string;

  beforeAll(async () => {
    log = join(world.dir, 'hooks-fail.log');
    const v1 = await world.packet(app('meter', '1.0.0', log));
    world.publish({
      'packets/meter-1.0.0.yaml': v1,
      'specs/meter.yaml': specYaml('meter', { role: 'meter' }, [{ name: 'meter', version: '^1' }]),
    });
    config = await world.device('dev-b', { role: 'meter' });
    expect((await pass(config)).result).toBe('converged');
  });

  it('a failing install hook rolls back: the previous version stays current, the packet is bad', async () => {
    const before = currentOf(config, 'meter');
    const broken = await world.packet(
      app('meter', '1.1.0', log, { install: `${loggingHook(log, 'install')}\necho "disk full" >&2\nexit 3` }),
    );
    world.publish({ 'packets/meter-1.1.0.yaml': broken });
    const report = await pass(config);
    expect(report.result).toBe('stalled');
    expect(report.errors).toMatchObject([{ code: 'hook_failed', packet: 'meter' }]);
    expect(report.errors[0]?.message).toContain('exited with 3');
    expect(report.errors[0]?.output).toContain('disk full');
    expect(currentOf(config, 'meter')).toBe(before);
    expect(slotsOf(config, 'meter')).toEqual([before.slice('slots/'.length)]);
    expect(report.status.packets.find((p) => p.name === 'meter')?.labels.version).toBe('1.0.0');
    expect(report.status.conditions).toMatchObject([
      { type: 'Ready', status: 'False', reason: 'HookFailed' },
      { type: 'Stalled', status: 'True', reason: 'HookFailed' },
    ]);
  });

  it('a bad packet is not retried on the next pass, and the state does not change', async () => {
    const hooksBefore = hookLines(log).length;
    const tip = world.stateTip('dev-b');
    const report = await pass(config);
    expect(hookLines(log)).toHaveLength(hooksBefore);
    expect(report.errors).toMatchObject([{ code: 'hook_failed', packet: 'meter' }]);
    expect(report.errors[0]?.message).toContain('not retried until the fleet changes this packet');
    expect(report.recorded?.changed).toBe(false);
    expect(world.stateTip('dev-b')).toBe(tip);
  });

  it('a failing check rolls back with check_failed, after the fleet replaced the bad packet', async () => {
    const before = currentOf(config, 'meter');
    const unhealthy = await world.packet(
      app('meter', '1.1.0', log, { check: `${loggingHook(log, 'check')}\nexit 1` }),
    );
    world.publish({ 'packets/meter-1.1.0.yaml': unhealthy });
    const report = await pass(config);
    expect(hookLines(log).slice(-2)).toEqual([
      `install 1.1.0 ${before.slice(6)}`,
      `check 1.1.0 ${before.slice(6)}`,
    ]);
    expect(report.errors).toMatchObject([{ code: 'check_failed', packet: 'meter' }]);
    expect(currentOf(config, 'meter')).toBe(before);
    expect(slotsOf(config, 'meter')).toEqual([before.slice(6)]);
  });

  it('is retried once the fleet changes the packet, and then installs', async () => {
    const fixed = await world.packet(app('meter', '1.1.0', log));
    world.publish({ 'packets/meter-1.1.0.yaml': fixed });
    const report = await pass(config);
    expect(report.errors).toEqual([]);
    expect(report.actions.map((a) => `${a.outcome} ${a.type} ${a.name}`)).toEqual(['done upgrade meter']);
    expect(slotsOf(config, 'meter')).toEqual([currentOf(config, 'meter').slice(6)]);
  });

  it('a hook that hangs is killed at its timeout and rolled back', async () => {
    const pidFile = join(world.dir, 'hang.pid');
    const hanging = await world.packet({
      ...app('meter', '1.2.0', log, { install: `echo $$ > ${pidFile}\nexec sleep 1000` }),
      hooks: { install: './install.sh', check: './check.sh', timeoutSeconds: 1 },
    });
    world.publish({ 'packets/meter-1.2.0.yaml': hanging });
    const report = await pass(config);
    expect(report.errors).toMatchObject([{ code: 'hook_failed', packet: 'meter' }]);
    expect(report.errors[0]?.message).toContain('timed out');
    const pid = Number(readFileSync(pidFile, 'utf8'));
    expect(() => process.kill(pid, 0)).toThrow();
    expect(readFileSync(join(config.dirs.root, 'meter', 'data', 'installed'), 'utf8').trim()).toBe('1.1.0');
  });
});

describe('agent run: hostile artifacts are refused with nothing extracted', () => {
  let log: string;
  let good: TestPacket;

  beforeAll(() => {
    log = join(world.dir, 'hooks-hostile.log');
    good = app('probe', '1.0.0', log);
  });

  async function refusedWith(
    id: string,
    manifest: string,
    code: string,
  ): Promise<{ report: PassReport; config: AgentConfig }> {
    world.publish({
      [`packets/${id}.yaml`]: manifest,
      [`specs/${id}.yaml`]: specYaml(id, { role: id }, [
        { name: 'probe', labels: { variant: id }, version: '^1' },
      ]),
    });
    const config = await world.device(id, { role: id });
    const report = await pass(config);
    expect(report.errors, JSON.stringify(report.errors)).toMatchObject([{ code, packet: 'probe' }]);
    expect(existsSync(join(config.dirs.root, 'probe'))).toBe(false);
    expect(hookLines(log)).toEqual([]);
    world.publish({ [`packets/${id}.yaml`]: null, [`specs/${id}.yaml`]: null });
    return { report, config };
  }

  it('refuses an artifact whose sha256 does not match', async () => {
    const manifest = await world.packet({ ...good, labels: { version: '1.0.0', variant: 'bad-sha' } });
    const wrong = manifest.replace(
      /sha256: ([0-9a-f]{64})/,
      (_, sha: string) => `sha256: ${[...sha].reverse().join('')}`,
    );
    await refusedWith('bad-sha', wrong, 'artifact_mismatch');
  });

  it('refuses an artifact larger than its manifest says', async () => {
    const manifest = await world.packet({ ...good, labels: { version: '1.0.0', variant: 'bad-size' } });
    const smaller = manifest.replace(/size: (\d+)/, (_, size: string) => `size: ${Number(size) - 100}`);
    await refusedWith('bad-size', smaller, 'artifact_mismatch');
  });

  it('refuses a signed artifact that would write outside its slot (tar-slip), and marks it bad', async () => {
    const file = join(world.artifactRoot, 'slip.tar.gz');
    execFileSync('python3', [
      '-c',
      `import io, tarfile
with tarfile.open(${JSON.stringify(file)}, 'w:gz') as t:
    data = b'owned'
    info = tarfile.TarInfo('../../escaped'); info.size = len(data)
    t.addfile(info, io.BytesIO(data))`,
    ]);
    const bytes = readFileSync(file);
    const manifest = world.manifest(
      { ...good, labels: { version: '1.0.0', variant: 'slip' } },
      {
        url: 'slip.tar.gz',
        sha256: createHash('sha256').update(bytes).digest('hex'),
        size: statSync(file).size,
      },
    );
    const { report, config } = await refusedWith('slip', manifest, 'artifact_mismatch');
    expect(report.errors[0]?.message).toContain('escaped');
    // `../../escaped` from the slot's staging folder (root/probe/slots/.x) would land in root/probe.
    expect(existsSync(join(config.dirs.root, 'probe', 'escaped'))).toBe(false);
    expect(existsSync(join(config.dirs.root, 'escaped'))).toBe(false);
  });
});

describe('agent run: one failing packet stops only what depends on it', () => {
  it('installs the independent packet, skips the dependent one, and names the failed dependency', async () => {
    const log = join(world.dir, 'hooks-deps.log');
    const broken = await world.packet(app('base', '1.0.0', log, { install: 'exit 7' }));
    const needsBase = await world.packet({
      ...app('addon', '1.0.0', log),
      requires: [{ name: 'base', version: '^1' }],
    });
    const standalone = await world.packet(app('solo', '1.0.0', log));
    world.publish({
      'packets/base.yaml': broken,
      'packets/addon.yaml': needsBase,
      'packets/solo.yaml': standalone,
      'specs/deps.yaml': specYaml('deps', { role: 'deps' }, [
        { name: 'addon', version: '^1' },
        { name: 'solo', version: '^1' },
      ]),
    });
    const config = await world.device('dev-deps', { role: 'deps' });
    const report = await pass(config);
    expect(report.result).toBe('stalled');
    expect(report.actions.map((a) => `${a.outcome} ${a.type} ${a.name}`)).toEqual([
      'failed install base',
      'failed install addon',
      'done install solo',
    ]);
    expect(report.errors).toMatchObject([
      { code: 'hook_failed', packet: 'base' },
      { code: 'hook_failed', packet: 'addon', message: 'not installed: it requires base, which failed' },
    ]);
    expect(hookLines(log)).toEqual(['install 1.0.0', 'check 1.0.0']);
    expect(existsSync(join(config.dirs.root, 'base'))).toBe(false);
    expect(existsSync(join(config.dirs.root, 'addon'))).toBe(false);
    expect(currentOf(config, 'solo')).toMatch(/^slots\//);
    expect(report.status.packets.map((p) => p.name)).toEqual(['solo']);
  });
});

describe('agent run: the empty-set guard', () => {
  it('refuses a plan that would uninstall everything, and uninstalls nothing', async () => {
    const log = join(world.dir, 'hooks-guard.log');
    const packet = await world.packet(app('keeper', '1.0.0', log));
    world.publish({
      'packets/keeper.yaml': packet,
      'specs/guard.yaml': specYaml('guard', { role: 'guard' }, [{ name: 'keeper', version: '^1' }]),
    });
    const config = await world.device('dev-guard', { role: 'guard' });
    expect((await pass(config)).result).toBe('converged');
    const slot = currentOf(config, 'keeper');

    world.publish({ 'specs/guard.yaml': specYaml('guard', { role: 'nobody' }, [{ name: 'keeper' }]) });
    const report = await pass(config);
    expect(report.result).toBe('stalled');
    expect(report.errors.map((e) => e.code)).toEqual(['empty_set_refused']);
    expect(report.actions).toEqual([]);
    expect(currentOf(config, 'keeper')).toBe(slot);
    expect(hookLines(log)).not.toContain('uninstall 1.0.0');
    expect(report.status.packets.map((p) => p.name)).toEqual(['keeper']);
  });
});

describe('agent run: the same artifact under other labels', () => {
  it('relabels without unpacking or running a hook', async () => {
    const log = join(world.dir, 'hooks-relabel.log');
    const first = app('label', '1.0.0', log);
    const manifest = await world.packet(first);
    world.publish({
      'packets/label.yaml': manifest,
      'specs/relabel.yaml': specYaml('relabel', { role: 'relabel' }, [{ name: 'label', version: '^1' }]),
    });
    const config = await world.device('dev-relabel', { role: 'relabel' });
    expect((await pass(config)).result).toBe('converged');
    const slot = currentOf(config, 'label');
    const hooks = hookLines(log).length;

    const artifact = {
      url: /url: (\S+)/.exec(manifest)?.[1] ?? '',
      sha256: /sha256: (\S+)/.exec(manifest)?.[1] ?? '',
      size: Number(/size: (\d+)/.exec(manifest)?.[1]),
    };
    world.publish({
      'packets/label-1.0.1.yaml': world.manifest({ ...first, labels: { version: '1.0.1' } }, artifact),
    });
    const report = await pass(config);
    expect(report.actions.map((a) => `${a.outcome} ${a.type} ${a.name}`)).toEqual(['done upgrade label']);
    expect(hookLines(log)).toHaveLength(hooks);
    expect(currentOf(config, 'label')).toBe(slot);
    expect(report.status.packets.find((p) => p.name === 'label')?.labels.version).toBe('1.0.1');
    expect((await pass(config)).actions).toEqual([]);
  });
});

describe('agent run: thin packs (source.thinPacks, for metered links)', () => {
  it('converges and follows a change, and stock git still reads the device repository', async () => {
    const log = join(world.dir, 'hooks-thin.log');
    world.publish({
      'packets/thin-1.0.0.yaml': await world.packet(app('thin', '1.0.0', log)),
      'specs/thin.yaml': specYaml('thin', { role: 'thin' }, [{ name: 'thin', version: '^1' }]),
    });
    const config = await world.device(
      'dev-thin',
      { role: 'thin' },
      {
        source: { remotes: [world.url], thinPacks: true },
      },
    );
    expect(config.source.thinPacks).toBe(true);
    expect((await pass(config)).result).toBe('converged');
    world.publish({ 'packets/thin-1.1.0.yaml': await world.packet(app('thin', '1.1.0', log)) });
    const report = await pass(config);
    expect(report.actions.map((a) => `${a.outcome} ${a.type} ${a.name}`)).toEqual(['done upgrade thin']);
    git(join(config.dirs.state, 'source.git'), ['fsck', '--strict']);
  });
});
