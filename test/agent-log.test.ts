import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createAgentLog } from '../src/agent/agent-log.js';

function capture(tty: boolean) {
  const stream = Object.assign(new PassThrough(), { isTTY: tty });
  let text = '';
  stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
  return { stream, text: () => text };
}

describe('createAgentLog', () => {
  it('writes one JSON document per line when the stream is not a terminal, and no progress', () => {
    const out = capture(false);
    const log = createAgentLog(out.stream);
    log.progress('logger: 50% of 100 bytes');
    log.log('warn', 'skipped mirror', { remote: 'http://m/fleet.git', errors: ['x'] });
    const lines = out.text().trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    const entry = JSON.parse(lines[0] ?? '') as Record<string, unknown>;
    expect(entry).toMatchObject({
      level: 'warn',
      msg: 'skipped mirror',
      remote: 'http://m/fleet.git',
      errors: ['x'],
    });
    expect(typeof entry.time).toBe('string');
  });

  it('writes readable lines on a terminal, replacing the progress line', () => {
    const out = capture(true);
    const log = createAgentLog(out.stream);
    log.progress('logger: 50% of 100 bytes');
    log.log('info', 'installed logger', { packet: 'logger' });
    log.log('error', 'pass failed');
    const text = out.text();
    expect(text).toContain('\r\x1b[Klogger: 50% of 100 bytes\r\x1b[K');
    expect(text).toMatch(/\d\d:\d\d:\d\d installed logger packet=logger\n/);
    expect(text).toMatch(/\d\d:\d\d:\d\d ERROR pass failed\n$/);
    expect(text).not.toContain('{');
  });
});
