import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, runCli, runCliJson } from './support/run-cli.js';

interface PlanJson {
  device: { id: string; labels: Record<string, string> };
  desired: { name: string; labels: Record<string, string>; specs: string[]; requiredBy: string[] }[];
  actions: { type: string; name: string; labels: Record<string, string>; reason: string }[];
  error?: { code: string; message: string };
}

const tmp = mkdtempSync(join(tmpdir(), 'gitfleet-plan-'));
beforeAll(() => ensureBuilt());
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** `gitfleet plan --dir fleet-example --label ... --json` for the given labels. */
const planFor = (...labels: string[]) =>
  runCliJson(['plan', '--dir', 'fleet-example', ...labels.flatMap((l) => ['--label', l])]);

const names = (plan: PlanJson) => plan.desired.map((d) => `${d.name}@${d.labels.version}`);

describe('gitfleet plan over fleet-example', () => {
  it('prints {desired, actions} for labels given with --label and exits 0', () => {
    const { status, json } = planFor('fleet=alpha', 'arch=arm64');
    const plan = json as PlanJson;
    expect(status).toBe(0);
    expect(names(plan)).toEqual(['logger@1.2.0', 'runtime@2.1.0', 'sensor-agent@1.0.0']);
    expect(plan.actions.map((a) => `${a.type} ${a.name}`)).toEqual([
      'install runtime',
      'install logger',
      'install sensor-agent',
    ]);
    expect(plan.desired.find((d) => d.name === 'runtime')?.requiredBy).toEqual(['logger', 'sensor-agent']);
    expect(plan.actions[1]?.reason).toBe('spec alpha-base asks for logger');
  });

  it('applies the device record and rollout buckets with --device-id', () => {
    const canary = runCliJson(['plan', '--dir', 'fleet-example', '--device-id', 'pi-0047']).json as PlanJson;
    expect(canary.desired.find((d) => d.name === 'logger')).toMatchObject({
      labels: { arch: 'armv7l', channel: 'beta', version: '1.3.0' },
      specs: ['logger-canary'],
    });
    const stable = runCliJson(['plan', '--dir', 'fleet-example', '--device-id', 'pi-0042']).json as PlanJson;
    expect(stable.desired.find((d) => d.name === 'logger')?.labels.channel).toBe('stable');
    expect(names(stable)).toContain('vpn@4.1.0'); // site eu-west-1 matches eu-*
  });

  it('gives a device with no labels an empty desired set', () => {
    const { status, json } = runCliJson(['plan', '--dir', 'fleet-example']);
    expect(status).toBe(0);
    expect(json).toMatchObject({ desired: [], actions: [] });
  });

  it('treats --label k= as the empty value, present', () => {
    const plan = runCliJson(['plan', '--dir', 'fleet-example', '--label', 'fleet=', '--label', 'arch=arm64'])
      .json as PlanJson;
    expect(plan.device.labels).toEqual({ arch: 'arm64', fleet: '' });
    expect(plan.desired).toEqual([]);
  });

  it('prints {"error":{"code","message"}} and exits 1 when the device cannot be resolved', () => {
    const { status, json } = planFor('fleet=alpha', 'arch=riscv64');
    expect(status).toBe(1);
    expect(json).toEqual({
      error: { code: 'no_matching_packet', message: expect.stringMatching(/logger/) as unknown },
    });
  });

  it('plans against --installed and refuses to empty a device', () => {
    const status = join(tmp, 'status.yaml');
    writeFileSync(
      status,
      'packets:\n  - { name: logger, labels: { version: 1.2.0, arch: arm64, channel: stable } }\n  - { name: old-tool, labels: {} }\n',
    );
    const plan = runCliJson([
      'plan',
      '--dir',
      'fleet-example',
      '--device-id',
      'pi-0044',
      '--installed',
      status,
    ]).json as PlanJson;
    expect(plan.actions.map((a) => `${a.type} ${a.name}`)).toEqual([
      'uninstall old-tool',
      'install runtime',
      'install sensor-agent',
      'install vpn',
    ]);
    const refused = runCliJson([
      'plan',
      '--dir',
      'fleet-example',
      '--label',
      'fleet=none',
      '--installed',
      status,
    ]);
    expect(refused.status).toBe(1);
    expect((refused.json as PlanJson).error?.code).toBe('empty_set_refused');
  });

  it('answers a malformed --installed file with invalid_manifest and its location', () => {
    const bad = join(tmp, 'bad.yaml');
    writeFileSync(bad, '- name: Logger\n');
    const { status, json } = runCliJson(['plan', '--dir', 'fleet-example', '--installed', bad]);
    expect(status).toBe(1);
    expect((json as PlanJson).error?.code).toBe('invalid_manifest');
    expect((json as PlanJson).error?.message).toContain('bad.yaml:1:3');
  });

  it('rejects a --label without =', () => {
    const result = runCli(['plan', '--dir', 'fleet-example', '--label', 'fleet', '--json']);
    expect(result.status).not.toBe(0);
    expect((JSON.parse(result.stdout) as PlanJson).error?.message).toMatch(/key=value/);
  });

  it('prints a readable table with reasons without --json', () => {
    const result = runCli(['plan', '--dir', 'fleet-example', '--device-id', 'pi-0043']);
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(
      /install\s+camera\s+\{arch: arm64, hw: cam-v2, version: 1.0.0\}\s+spec cameras asks for camera/,
    );
  });

  it('refuses to plan over a fleet that does not parse, naming file:line:col', () => {
    const dir = mkdtempSync(join(tmp, 'fleet-'));
    writeFileSync(join(dir, 'fleet.yaml'), 'kind: Fleet\nguards: { allowEmpty: maybe }\n');
    const { status, json } = runCliJson(['plan', '--dir', dir]);
    expect(status).toBe(1);
    expect((json as PlanJson).error).toMatchObject({
      code: 'invalid_manifest',
      message: expect.stringContaining('fleet.yaml:2:') as unknown,
    });
  });
});
