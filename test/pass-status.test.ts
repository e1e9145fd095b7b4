import { describe, expect, it } from 'vitest';
import { buildDeviceStatus, passResult, type PassError } from '../src/reconciler/build-device-status.js';
import { nextPollDelay } from '../src/reconciler/next-poll-delay.js';
import { formatDeviceStatus } from '../src/schema/device-status.js';
import { labels } from './support/build-fleet.js';

const unreachable: PassError = { code: 'source_unreachable', message: 'no mirror', retryable: true };
const hookFailed: PassError = {
  code: 'hook_failed',
  message: 'exited with 3',
  packet: 'a',
  retryable: false,
};

describe('buildDeviceStatus', () => {
  const outcome = (errors: PassError[]) => ({
    device: 'd1',
    labels: labels({ arch: 'amd64' }),
    revision: 'a'.repeat(40),
    packets: [{ name: 'a', labels: labels({ version: '1' }), sha256: 'b'.repeat(64), installedAt: 'then' }],
    errors,
  });

  it('is Ready/Converged without errors', () => {
    expect(passResult([])).toBe('converged');
    expect(buildDeviceStatus(outcome([])).conditions).toEqual([
      { type: 'Ready', status: 'True', reason: 'Converged', message: '' },
    ]);
  });

  it('is progressing (Ready False, not Stalled) when every error may clear by itself', () => {
    expect(passResult([unreachable])).toBe('progressing');
    expect(buildDeviceStatus(outcome([unreachable])).conditions).toEqual([
      { type: 'Ready', status: 'False', reason: 'SourceUnreachable', message: 'no mirror' },
    ]);
  });

  it('is stalled, with the first error as the reason, when one error needs a change', () => {
    expect(passResult([unreachable, hookFailed])).toBe('stalled');
    const status = buildDeviceStatus(outcome([hookFailed, unreachable]));
    expect(status.conditions.map((c) => `${c.type}=${c.status}:${c.reason}`)).toEqual([
      'Ready=False:HookFailed',
      'Stalled=True:HookFailed',
    ]);
    expect(status.errors).toEqual([
      { code: 'hook_failed', message: 'exited with 3', packet: 'a' },
      { code: 'source_unreachable', message: 'no mirror' },
    ]);
  });

  it('gives the same bytes for the same outcome: no clock in it', () => {
    expect(formatDeviceStatus(buildDeviceStatus(outcome([hookFailed])))).toBe(
      [
        'device: "d1"',
        'labels:',
        '  arch: "amd64"',
        `observedRevision: "${'a'.repeat(40)}"`,
        'conditions:',
        '  - type: "Ready"',
        '    status: "False"',
        '    reason: "HookFailed"',
        '    message: "exited with 3"',
        '  - type: "Stalled"',
        '    status: "True"',
        '    reason: "HookFailed"',
        '    message: "exited with 3"',
        'packets:',
        '  - name: "a"',
        '    labels:',
        '      version: "1"',
        `    sha256: "${'b'.repeat(64)}"`,
        '    installedAt: "then"',
        'errors:',
        '  - code: "hook_failed"',
        '    message: "exited with 3"',
        '    packet: "a"',
        '',
      ].join('\n'),
    );
  });
});

describe('nextPollDelay', () => {
  const poll = { intervalSeconds: 60, jitter: 0.1 };

  it('spreads the interval by ±jitter', () => {
    expect(nextPollDelay(poll, 0, 0)).toBeCloseTo(54);
    expect(nextPollDelay(poll, 0, 0.5)).toBeCloseTo(60);
    expect(nextPollDelay(poll, 0, 0.9999)).toBeCloseTo(66, 1);
  });

  it('doubles per failed pass in a row, up to 16 times the interval', () => {
    expect([0, 1, 2, 3, 4, 5, 50].map((f) => nextPollDelay(poll, f, 0.5))).toEqual([
      60, 120, 240, 480, 960, 960, 960,
    ]);
  });
});
