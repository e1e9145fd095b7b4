import { describe, expect, it } from 'vitest';
import { orderByDependencies, planActions, type Action } from '../src/reconciler/plan-actions.js';
import { planDevice } from '../src/reconciler/plan-device.js';
import type { DesiredPacket } from '../src/reconciler/desired-packet.js';
import type { InstalledPacket, Packet } from '../src/schema/fleet.js';
import { app, fleet, labels, packet, spec } from './support/build-fleet.js';

function desired(p: Packet, specs: string[] = ['s'], requiredBy: string[] = []): DesiredPacket {
  return { packet: p, specs, requiredBy, dependsOn: [...new Set(p.requires.map((r) => r.name))].sort() };
}

function installed(p: Packet, requires: string[] = []): InstalledPacket {
  return { name: p.name, labels: p.labels, sha256: p.artifact.sha256, requires };
}

const steps = (actions: Action[]) => actions.map((a) => `${a.type} ${a.name}`);

describe('planActions', () => {
  const runtime = packet('runtime', { version: '2.0.0' });
  const logger = packet('logger', { version: '1.0.0' }, [app('runtime')]);
  const logger2 = packet('logger', { version: '1.1.0' }, [app('runtime')]);

  it('plans nothing when the device has exactly its desired state', () => {
    const want = [desired(logger), desired(runtime, [], ['logger'])];
    const result = planActions(want, [installed(logger, ['runtime']), installed(runtime)], {
      allowEmpty: false,
    });
    expect(result).toEqual({ ok: true, actions: [] });
  });

  it('installs dependencies before their dependents', () => {
    const result = planActions([desired(logger), desired(runtime, [], ['logger'])], [], {
      allowEmpty: false,
    });
    expect(result.ok && steps(result.actions)).toEqual(['install runtime', 'install logger']);
    expect(result.ok && result.actions.map((a) => a.reason)).toEqual([
      'required by logger',
      'spec s asks for logger',
    ]);
  });

  it('upgrades when the same name moves to another packet, naming both labelsets', () => {
    const result = planActions(
      [desired(logger2), desired(runtime, [], ['logger'])],
      [installed(logger), installed(runtime)],
      {
        allowEmpty: false,
      },
    );
    expect(result.ok && steps(result.actions)).toEqual(['upgrade logger']);
    expect(result.ok && result.actions[0]?.reason).toBe(
      'spec s asks for logger: {version: 1.0.0} → {version: 1.1.0}',
    );
  });

  it('upgrades when the artifact bytes changed under the same labels', () => {
    const rebuilt: Packet = { ...runtime, artifact: { ...runtime.artifact, sha256: 'f'.repeat(64) } };
    const result = planActions([desired(rebuilt)], [installed(runtime)], { allowEmpty: false });
    expect(result.ok && steps(result.actions)).toEqual(['upgrade runtime']);
    expect(result.ok && result.actions[0]?.reason).toMatch(/artifact changed/);
  });

  it('does not upgrade when the installed record has no sha256 and the labels match', () => {
    const result = planActions(
      [desired(runtime)],
      [{ name: 'runtime', labels: labels({ version: '2.0.0' }), requires: [] }],
      {
        allowEmpty: false,
      },
    );
    expect(result).toEqual({ ok: true, actions: [] });
  });

  it('uninstalls first, dependents before their dependencies, then installs', () => {
    const vpn = packet('vpn', {});
    const result = planActions([desired(vpn)], [installed(runtime), installed(logger, ['runtime'])], {
      allowEmpty: false,
    });
    expect(result.ok && steps(result.actions)).toEqual([
      'uninstall logger',
      'uninstall runtime',
      'install vpn',
    ]);
  });

  it('refuses a plan that uninstalls every installed packet (empty_set_refused)', () => {
    const result = planActions([], [installed(runtime)], { allowEmpty: false });
    expect(result.ok).toBe(false);
    expect(!result.ok && result.error.code).toBe('empty_set_refused');
  });

  it('allows that plan when allowEmpty is set', () => {
    const result = planActions([], [installed(runtime)], { allowEmpty: true });
    expect(result.ok && steps(result.actions)).toEqual(['uninstall runtime']);
  });

  it('plans nothing for an empty desired set on an empty device', () => {
    expect(planActions([], [], { allowEmpty: false })).toEqual({ ok: true, actions: [] });
  });

  it('lets a device swap every packet for others: the guard is about an empty desired set', () => {
    const vpn = packet('vpn', {});
    const result = planActions([desired(vpn)], [installed(runtime)], { allowEmpty: false });
    expect(result.ok && steps(result.actions)).toEqual(['uninstall runtime', 'install vpn']);
  });

  it('does not count upgrades as uninstalls for the guard', () => {
    const result = planActions([desired(logger2)], [installed(logger)], { allowEmpty: false });
    expect(result.ok && steps(result.actions)).toEqual(['upgrade logger']);
  });
});

describe('orderByDependencies', () => {
  it('orders by dependencies, ties by name, and keeps cycles at the end', () => {
    const deps: Record<string, string[]> = { a: ['b'], b: [], c: ['a', 'zz'], x: ['y'], y: ['x'] };
    expect(orderByDependencies(['c', 'a', 'b', 'x', 'y'], (n) => deps[n] ?? [])).toEqual([
      'b',
      'a',
      'c',
      'x',
      'y',
    ]);
  });
});

describe('planDevice', () => {
  const f = {
    ...fleet(
      [packet('logger', { version: '1.0.0' }), packet('logger', { version: '2.0.0' })],
      [
        spec('s', { fleet: 'alpha' }, [app('logger', {}, '^1')]),
        spec('next', { fleet: 'beta' }, [app('logger', {}, '^2')]),
      ],
    ),
  };
  const withRecord = {
    ...f,
    devices: [
      {
        id: 'pi-1',
        labels: labels({ fleet: 'beta' }),
        allowEmpty: true,
        location: { file: 'd', line: 1, col: 1 },
      },
    ],
  };

  it('lets the device record labels win over the given labels', () => {
    const plan = planDevice(withRecord, 'pi-1', labels({ fleet: 'alpha' }), []);
    expect(plan.ok && plan.desired.map((d) => d.packet.labels.version)).toEqual(['2.0.0']);
    expect(plan.device.labels.fleet).toBe('beta');
  });

  it('takes allowEmpty from the device record', () => {
    const gone = [{ name: 'old', labels: labels(), requires: [] }];
    expect(planDevice(f, 'pi-2', labels({}), gone).ok).toBe(false);
    const plan = planDevice(withRecord, 'pi-1', labels({ fleet: 'gamma' }), gone);
    expect(plan.ok).toBe(true);
  });

  it('takes allowEmpty from fleet.yaml guards', () => {
    const allowed = { ...f, settings: { ...f.settings, guards: { allowEmpty: true } } };
    const plan = planDevice(allowed, 'pi-2', labels({}), [{ name: 'old', labels: labels(), requires: [] }]);
    expect(plan.ok && steps(plan.actions)).toEqual(['uninstall old']);
  });
});
