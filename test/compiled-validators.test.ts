import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { projectRoot } from './support/run-cli.js';

describe('compiled validators', () => {
  it('src/schema/compiled-validators.js is compiled from the current schemas (npm run schemas)', () => {
    const check = spawnSync(process.execPath, ['bin/compile-schemas.js', '--check'], {
      cwd: projectRoot,
      encoding: 'utf8',
    });
    expect(check.stderr).toBe('');
    expect(check.status).toBe(0);
  });
});
