import { describe, expect, it } from 'vitest';
import { diffJson, renderDiffMarkdown } from '../src/cli/present-diff.js';
import { describeEntry, diffFleets, type FleetDiff } from '../src/reconciler/diff-fleets.js';
import { inRollout } from '../src/reconciler/rollout-bucket.js';
import type { DeviceRecord, Fleet, Packet, Spec } from '../src/schema/fleet.js';
import { app, fleet, labels, packet, spec } from './support/build-fleet.js';

function record(id: string, assigned: Record<string, string> = {}): DeviceRecord {
  return { id, labels: labels(assigned), allowEmpty: false, location: { file: 'test', line: 1, col: 1 } };
}

/** A fleet with device records, sorted by id as the parser returns them. */
function withDevices(packets: Packet[], specs: Spec[], records: DeviceRecord[]): Fleet {
  return { ...fleet(packets, specs), devices: [...records].sort((a, b) => (a.id < b.id ? -1 : 1)) };
}

/** The change of one device in words, or `[]` when no group lists it. */
function changeOf(diff: FleetDiff, id: string): string[] {
  return diff.groups.find((g) => g.devices.includes(id))?.changes.map(describeEntry) ?? [];
}

function entryOf(diff: FleetDiff, id: string, type: string) {
  return diff.groups.find((g) => g.devices.includes(id))?.changes.find((c) => c.type === type);
}

const logger12 = packet('logger', { version: '1.2.0' });
const logger13 = packet('logger', { version: '1.3.0' });
const alpha = { fleet: 'alpha' };
const loggerSpec = (range: string) => spec('logger-stable', alpha, [app('logger', {}, range)]);
const alphas = [record('pi-1', alpha), record('pi-2', alpha)];

describe('diffFleets: packet changes', () => {
  it('upgrades when a spec moves to another version, showing from→to', () => {
    const base = withDevices([logger12, logger13], [loggerSpec('~1.2.0')], alphas);
    const head = withDevices([logger12, logger13], [loggerSpec('^1.3.0')], alphas);
    const diff = diffFleets(base, head);
    expect(diff.groups.map((g) => g.devices)).toEqual([['pi-1', 'pi-2']]);
    expect(changeOf(diff, 'pi-1')).toEqual(['upgrade logger 1.2.0→1.3.0']);
    expect(entryOf(diff, 'pi-1', 'upgrade')).toMatchObject({ specs: ['logger-stable'], requiredBy: [] });
  });

  it('shows the labelsets of an upgrade without versions, and a rebuilt artifact', () => {
    const arm = packet('agent', { arch: 'arm64' });
    const generic = packet('agent', {});
    const rebuilt: Packet = { ...generic, artifact: { ...generic.artifact, sha256: 'f'.repeat(64) } };
    const asks = [spec('agent', alpha, [app('agent')])];
    const pinned = [spec('agent', alpha, [app('agent', { arch: 'arm64' })])];
    expect(
      changeOf(
        diffFleets(withDevices([arm, generic], asks, alphas), withDevices([arm, generic], pinned, alphas)),
        'pi-1',
      ),
    ).toEqual(['upgrade agent {}→{arch: arm64}']);
    expect(
      changeOf(
        diffFleets(withDevices([generic], asks, alphas), withDevices([rebuilt], asks, alphas)),
        'pi-1',
      ),
    ).toEqual(['upgrade agent (artifact changed)']);
  });

  it('installs a packet a new spec asks for, naming the HEAD spec', () => {
    const monitor = packet('monitor', { version: '1.0.0' });
    const base = withDevices([logger12, monitor], [loggerSpec('~1.2.0')], alphas);
    const head = withDevices(
      [logger12, monitor],
      [loggerSpec('~1.2.0'), spec('monitor-all', {}, [app('monitor', {}, '^1.0.0')])],
      alphas,
    );
    const diff = diffFleets(base, head);
    expect(changeOf(diff, 'pi-2')).toEqual(['install monitor 1.0.0']);
    expect(entryOf(diff, 'pi-2', 'install')).toMatchObject({ specs: ['monitor-all'], requiredBy: [] });
  });

  it('uninstalls a packet when its spec is removed, naming the BASE spec as the reason', () => {
    const vpn = packet('vpn', {});
    const base = withDevices(
      [logger12, vpn],
      [loggerSpec('~1.2.0'), spec('vpn-eu', alpha, [app('vpn')])],
      alphas,
    );
    const head = withDevices([logger12, vpn], [loggerSpec('~1.2.0')], alphas);
    const diff = diffFleets(base, head);
    expect(changeOf(diff, 'pi-1')).toEqual(['uninstall vpn']);
    expect(entryOf(diff, 'pi-1', 'uninstall')).toMatchObject({ specs: ['vpn-eu'] });
    expect(renderDiffMarkdown(diff)).toContain('| uninstall vpn | at BASE: spec vpn-eu |');
  });

  it('installs a new dependency with the packets that require it', () => {
    const runtime = packet('runtime', { version: '2.0.0' });
    const logger2 = packet('logger', { version: '2.0.0' }, [app('runtime', {}, '^2.0.0')]);
    const base = withDevices([logger12, logger2, runtime], [loggerSpec('^1.0.0')], alphas);
    const head = withDevices([logger12, logger2, runtime], [loggerSpec('^2.0.0')], alphas);
    const diff = diffFleets(base, head);
    expect(changeOf(diff, 'pi-1')).toEqual(['upgrade logger 1.2.0→2.0.0', 'install runtime 2.0.0']);
    expect(entryOf(diff, 'pi-1', 'install')).toMatchObject({
      name: 'runtime',
      specs: [],
      requiredBy: ['logger'],
    });
    expect(renderDiffMarkdown(diff)).toContain('spec logger-stable<br>required by logger |');
  });
});

describe('diffFleets: failing and fixed', () => {
  const stable = packet('logger', { channel: 'stable' });
  const arm = packet('logger', { arch: 'arm64' });
  const specs = [spec('logger-stable', {}, [app('logger', { channel: 'stable' })])];
  const devices = [record('amd-1', { arch: 'amd64' }), record('arm-1', { arch: 'arm64' })];
  const ok = withDevices([stable], specs, devices);
  const ambiguous = withDevices([stable, arm], specs, devices);

  it('reports a device whose desired state becomes an error, with the codes and messages', () => {
    const diff = diffFleets(ok, ambiguous);
    expect(changeOf(diff, 'arm-1')).toEqual(['fail: ambiguous_match']);
    expect(changeOf(diff, 'amd-1')).toEqual([]);
    expect(entryOf(diff, 'arm-1', 'failing')).toMatchObject({
      errors: [
        {
          code: 'ambiguous_match',
          app: 'logger',
          message: expect.stringContaining('2 packets match logger') as string,
        },
      ],
    });
    expect(diff.failing).toBe(1);
    expect(diff.newlyFailing).toBe(1);
  });

  it('reports a fixed device with the BASE errors and its whole HEAD desired set as installs', () => {
    const diff = diffFleets(ambiguous, ok);
    expect(changeOf(diff, 'arm-1')).toEqual([
      'fixed (was ambiguous_match)',
      'install logger {channel: stable}',
    ]);
    expect(diff.failing).toBe(0);
    expect(diff.newlyFailing).toBe(0);
  });

  it('reports a device failing at both revisions only when its errors change', () => {
    expect(diffFleets(ambiguous, ambiguous).changed).toBe(0);
    const missing = withDevices([packet('logger', { channel: 'beta' })], specs, devices);
    const diff = diffFleets(ambiguous, missing);
    expect(changeOf(diff, 'arm-1')).toEqual(['fail: no_matching_packet (was ambiguous_match)']);
    expect(changeOf(diff, 'amd-1')).toEqual(['fail: no_matching_packet']);
  });
});

describe('diffFleets: devices', () => {
  const specs = [loggerSpec('~1.2.0')];

  it('treats a device record added or removed as an empty desired set on the other side', () => {
    const base = withDevices([logger12], specs, [record('old', alpha), record('kept', alpha)]);
    const head = withDevices([logger12], specs, [record('kept', alpha), record('new', alpha)]);
    const diff = diffFleets(base, head);
    expect(changeOf(diff, 'old')).toEqual(['device record removed', 'uninstall logger 1.2.0']);
    expect(changeOf(diff, 'new')).toEqual(['device record added', 'install logger 1.2.0']);
    expect(changeOf(diff, 'kept')).toEqual([]);
    expect(diff).toMatchObject({ checked: 3, changed: 2 });
  });

  it('compares packets by name, labels and artifact sha256, not by object', () => {
    const base = withDevices([logger12], specs, alphas);
    const head = withDevices([packet('logger', { version: '1.2.0' })], specs, alphas);
    expect(head.packets[0]).not.toBe(logger12);
    expect(diffFleets(base, head)).toMatchObject({ changed: 0, groups: [] });
  });

  it('follows a label change on a device record into a spec target', () => {
    const base = withDevices([logger12], specs, [record('pi-1', { fleet: 'beta' })]);
    const head = withDevices([logger12], specs, [record('pi-1', alpha)]);
    expect(changeOf(diffFleets(base, head), 'pi-1')).toEqual(['install logger 1.2.0']);
  });

  it('counts unchanged devices without listing them', () => {
    const records = [...alphas, record('pi-3', alpha), record('lab-1', { fleet: 'lab' })];
    const base = withDevices([logger12, logger13], specs, records);
    const head = withDevices(
      [logger12, logger13],
      [...specs, spec('lab', { fleet: 'lab' }, [app('logger', {}, '^1.3.0')])],
      records,
    );
    const diff = diffFleets(base, head);
    expect(diff).toMatchObject({ checked: 4, changed: 1, failing: 0 });
    expect(diff.groups.flatMap((g) => g.devices)).toEqual(['lab-1']);
    expect(diffFleets(base, base).summary).toBe('No device changes (4 devices checked)');
  });

  it('only adds devices when a rollout percent widens', () => {
    const records = Array.from({ length: 400 }, (_, i) => record(`pi-${i}`, alpha));
    const rollout = (percent: number) => [spec('canary', alpha, [app('logger', {}, '~1.2.0')], { percent })];
    const diff = diffFleets(
      withDevices([logger12], rollout(10), records),
      withDevices([logger12], rollout(50), records),
    );
    const widened = records.filter((r) => inRollout('canary', r.id, 50) && !inRollout('canary', r.id, 10));
    expect(widened.length).toBeGreaterThan(100);
    expect(diff.groups.map((g) => g.changes.map(describeEntry))).toEqual([['install logger 1.2.0']]);
    expect(diff.groups[0]?.devices).toEqual(widened.map((r) => r.id).sort());
  });
});

describe('diffFleets: groups and summary', () => {
  const stable = packet('logger', { channel: 'stable', version: '1.2.0' });
  const stable13 = packet('logger', { channel: 'stable', version: '1.3.0' });
  const arm = packet('logger', { arch: 'arm64', version: '1.3.0' });
  const monitor = packet('monitor', {});
  const records = [
    record('a-1', alpha),
    record('a-2', alpha),
    record('b-1', { fleet: 'beta' }),
    record('b-2', { fleet: 'beta' }),
    record('arm-1', { ...alpha, arch: 'arm64' }),
    record('c-1', { fleet: 'gamma' }),
  ];
  const loggerFor = (fleetName: string, version: string): Spec =>
    spec(`logger-${fleetName}`, { fleet: fleetName }, [app('logger', { channel: 'stable', version })]);
  const base = withDevices([stable, stable13, arm, monitor], [loggerFor('alpha', '1.2.0')], records);
  const head = withDevices(
    [stable, stable13, arm, monitor],
    [loggerFor('alpha', '1.3.0'), spec('monitor-beta', { fleet: 'beta' }, [app('monitor')])],
    records,
  );

  it('groups devices with an identical change, largest group first', () => {
    const diff = diffFleets(base, head);
    expect(diff.groups.map((g) => [g.devices, g.changes.map(describeEntry)])).toEqual([
      [['b-1', 'b-2'], ['install monitor']],
      [['a-1', 'a-2'], ['upgrade logger 1.2.0→1.3.0']],
      [['arm-1'], ['fail: ambiguous_match']],
    ]);
    expect(diff).toMatchObject({ checked: 6, changed: 5, failing: 1 });
  });

  it('sums the change up in one exact line', () => {
    expect(diffFleets(base, head).summary).toBe(
      '5 devices change: 2 install monitor, 2 upgrade logger 1.2.0→1.3.0, 1 fail: ambiguous_match',
    );
  });

  it('prints a stable JSON document', () => {
    const diff = diffFleets(base, head);
    expect(diffJson(diff)).toEqual({
      summary: diff.summary,
      devices: { checked: 6, changed: 5, failing: 1 },
      groups: [
        {
          devices: ['b-1', 'b-2'],
          changes: [
            {
              type: 'install',
              name: 'monitor',
              to: { labels: {}, sha256: monitor.artifact.sha256 },
              specs: ['monitor-beta'],
              requiredBy: [],
            },
          ],
        },
        {
          devices: ['a-1', 'a-2'],
          changes: [
            {
              type: 'upgrade',
              name: 'logger',
              from: { labels: { channel: 'stable', version: '1.2.0' }, sha256: stable.artifact.sha256 },
              to: { labels: { channel: 'stable', version: '1.3.0' }, sha256: stable13.artifact.sha256 },
              specs: ['logger-alpha'],
              requiredBy: [],
            },
          ],
        },
        {
          devices: ['arm-1'],
          changes: [
            {
              type: 'failing',
              errors: [expect.objectContaining({ code: 'ambiguous_match', app: 'logger' })],
            },
          ],
        },
      ],
    });
  });
});

describe('renderDiffMarkdown', () => {
  /** Table cells split on pipes that are not backslash-escaped. */
  const cells = (row: string) => row.split(/(?<!\\)\|/);

  it('escapes pipes, backticks and mentions in hostile ids, labels and messages', () => {
    const hostile = '1.3.0|`rm -rf`|@admin';
    const packets = [logger12, packet('logger', { version: hostile })];
    const records = [record('evil|`id`', alpha), record('@here', { ...alpha, conflict: 'yes' })];
    const base = withDevices(packets, [loggerSpec('~1.2.0')], records);
    const head = withDevices(
      packets,
      [
        spec('logger-stable', alpha, [app('logger', { version: hostile })]),
        spec('also|`x`', { conflict: 'yes' }, [app('logger', { version: '1.2.0' })]),
      ],
      records,
    );
    const markdown = renderDiffMarkdown(diffFleets(base, head));
    const rows = markdown.split('\n').filter((l) => l.startsWith('|'));
    expect(rows.length).toBeGreaterThan(2);
    for (const row of rows) expect(cells(row)).toHaveLength(5);
    expect(markdown).not.toMatch(/(?<!\\)`/);
    expect(markdown).not.toMatch(/@[a-z]/);
    expect(markdown).toContain('evil\\|\\`id\\`');
    expect(markdown.split('\n')[0]).toMatch(/^\*\*.*\*\*$/);
  });

  it('stays under the comment size limit for 100,000 devices, and JSON lists every id', () => {
    const { base, head, ids } = largeFleets(100_000, 200);
    const diff = diffFleets(base, head);
    expect(diff).toMatchObject({ checked: 100_000, changed: 100_000, failing: 500 });
    expect(diff.groups).toHaveLength(200);
    expect(diff.summary).toBe(
      '100,000 devices change: 500 fail: no_matching_packet, ' +
        '500 upgrade app-00 1.0.0→1.1.0 + install site-000 1.0.0, ' +
        '500 upgrade app-00 1.0.0→1.1.0 + install site-001 1.0.0, 98,500 in 197 other changes',
    );

    const markdown = renderDiffMarkdown(diff);
    expect(markdown.length).toBeLessThan(60_000);
    expect(markdown.startsWith(`**${diff.summary.replace(/_/g, (c) => `\\${c}`)}**\n`)).toBe(true);
    expect(markdown.split('\n').filter((l) => l.startsWith('| **500**'))).toHaveLength(50);
    expect(markdown).toContain('… and 480 more');
    expect(markdown).toContain('… and 150 more groups of changes on 75,000 devices;');

    const wide = renderDiffMarkdown(diff, { maxDevicesPerGroup: 5_000 });
    expect(wide.length).toBeLessThan(60_000);
    expect(wide).toContain('(comment size limit reached)');

    const listed = diffJson(diff).groups.flatMap((g) => g.devices);
    expect(listed).toHaveLength(100_000);
    expect(new Set(listed)).toEqual(new Set(ids));
  });
});

/**
 * Two revisions of a fleet of `size` devices over `sites` sites, 20 specs applying to each: HEAD moves
 * one app to a new version for everyone and gives each site its own packet; the last site's packet does
 * not exist, so that site fails.
 */
function largeFleets(size: number, sites: number) {
  const site = (i: number) => `site-${String(i).padStart(3, '0')}`;
  const names = Array.from({ length: 20 }, (_, i) => `app-${String(i).padStart(2, '0')}`);
  // Each revision gets its own packet objects, as reading two commits does.
  const packets = () => [
    ...names.flatMap((n) => [packet(n, { version: '1.0.0' }), packet(n, { version: '1.1.0' })]),
    ...Array.from({ length: sites - 1 }, (_, i) => packet(site(i), { version: '1.0.0' })),
  ];
  const common = (first: string): Spec[] =>
    names.map((n, i) => spec(`common-${n}`, alpha, [app(n, { version: i === 0 ? first : '1.0.0' })]));
  const perSite = Array.from({ length: sites }, (_, i) =>
    spec(site(i), { site: site(i) }, [app(site(i), {}, '^1.0.0')]),
  );
  const ids = Array.from({ length: size }, (_, i) => `device-${String(i).padStart(6, '0')}`);
  const records = ids.map((id, i) => record(id, { ...alpha, site: site(i % sites) }));
  return {
    base: { ...fleet(packets(), common('1.0.0')), devices: records },
    head: { ...fleet(packets(), [...common('1.1.0'), ...perSite]), devices: records },
    ids,
  };
}
