import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { lstatSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { runDemo, type DemoResult } from '../src/agent/run-demo.js';
import { renderDiffMarkdown } from '../src/cli/present-diff.js';
import { renderHistory, renderStatus } from '../src/cli/present-status.js';
import { ensureBuilt } from './support/run-cli.js';

/**
 * `gitfleet demo` end to end: a signed repository served by stock git http-backend, artifacts by the
 * static server, two devices run as real `gitfleet agent run --once` processes. Asserts what is on disk.
 */

let result: DemoResult;
const lines: string[] = [];

beforeAll(async () => {
  // The devices run the built CLI.
  ensureBuilt('agent/run');
  result = await runDemo({
    keep: true,
    log: (line) => lines.push(line),
    present: { diff: (diff) => renderDiffMarkdown(diff), status: renderStatus, history: renderHistory },
  });
}, 180_000);

afterAll(() => {
  if (result?.dir) rmSync(result.dir, { recursive: true, force: true });
});

const expected: Record<string, string[]> = {
  'pi-0042': ['logger', 'runtime', 'sensor-agent', 'vpn'],
  'nuc-0001': ['logger', 'runtime', 'vpn'],
};

/** The slot `<root>/<packet>/current` points at, checked to be a link to an existing `slots/<prefix>`. */
function currentSlotOf(root: string, packet: string): string {
  const current = join(root, packet, 'current');
  expect(lstatSync(current).isSymbolicLink()).toBe(true);
  const target = readlinkSync(current);
  expect(target).toMatch(/^slots\/[0-9a-f]{16}$/);
  expect(lstatSync(join(root, packet, target)).isDirectory()).toBe(true);
  return target.slice('slots/'.length);
}

describe('gitfleet demo', () => {
  it('runs two devices with different labels', () => {
    expect(result.devices.map((d) => d.id)).toEqual(['pi-0042', 'nuc-0001']);
    expect(result.devices.map((d) => d.labels.arch)).toEqual(['armv7l', 'amd64']);
    expect(result.revisions.first).toMatch(/^[0-9a-f]{40}$/);
    expect(result.revisions.second).toMatch(/^[0-9a-f]{40}$/);
  });

  it('converges both devices on the first pass: a current slot for every desired packet', () => {
    const first = result.passes.filter((p) => p.pass === 1);
    expect(first.map((p) => [p.device, p.exitCode])).toEqual([
      ['pi-0042', 0],
      ['nuc-0001', 0],
    ]);
    for (const pass of first) {
      expect(Object.keys(pass.slots).sort()).toEqual(expected[pass.device]);
      expect(pass.output).toContain(`${pass.device}: converged`);
    }
  });

  it('upgrades vpn on both devices on the second pass and leaves the other packets alone', () => {
    const second = result.passes.filter((p) => p.pass === 2);
    expect(second.every((p) => p.converged)).toBe(true);
    expect(result.upgraded.map((u) => [u.device, u.packet])).toEqual([
      ['pi-0042', 'vpn'],
      ['nuc-0001', 'vpn'],
    ]);
    for (const device of result.devices) {
      const before = result.passes.find((p) => p.pass === 1 && p.device === device.id)!.slots;
      for (const packet of expected[device.id]!) {
        const slot = currentSlotOf(device.root, packet);
        if (packet === 'vpn') expect(slot).not.toBe(before[packet]);
        else expect(slot).toBe(before[packet]);
      }
      // The slot holds the release's own artifact, and its install hook ran.
      const packetFile = readFileSync(join(device.root, 'vpn', 'current', 'PACKET'), 'utf8');
      expect(packetFile).toBe('vpn {version: 4.1.1}\n');
      expect(readFileSync(join(device.root, 'vpn', 'data', 'vpn.installed'), 'utf8')).toBe(packetFile);
    }
    expect(result.ok).toBe(true);
  });

  it('prints diff, status and history naming the devices', () => {
    expect(result.diff).toContain('upgrade vpn 4.1.0→4.1.1');
    for (const id of ['pi-0042', 'nuc-0001']) {
      expect(result.diff).toContain(id);
      expect(result.status).toMatch(new RegExp(`${id}\\s+Ready\\s+${result.revisions.second.slice(0, 12)}`));
    }
    expect(result.status).toContain('0 UNVERIFIED');
    expect(result.history.device).toBe('pi-0042');
    expect(result.history.text).toContain('device pi-0042');
    expect(result.history.text).toContain('Release vpn 4.1.1');
    expect(result.history.text).toContain('release@fleet.example');
    const narration = lines.join('\n');
    expect(narration).toContain('$ gitfleet agent run --config $DEMO/devices/pi-0042/agent.yaml --once');
    expect(narration).toContain(result.status.split('\n')[0]);
  });

  it('pushes signed state commits that stock git accepts', () => {
    const states = execFileSync(
      'git',
      ['--git-dir', result.repository, 'for-each-ref', '--format=%(refname)', 'refs/gitfleet/state/'],
      { encoding: 'utf8' },
    );
    expect(states.trim().split('\n')).toEqual([
      'refs/gitfleet/state/nuc-0001',
      'refs/gitfleet/state/pi-0042',
    ]);
    execFileSync('git', ['--git-dir', result.repository, 'fsck', '--strict'], { stdio: 'pipe' });
  });
});
