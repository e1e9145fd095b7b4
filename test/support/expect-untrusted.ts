import { expect } from 'vitest';
import { GitfleetError } from '../../src/schema/gitfleet-error.js';

/** `action` throws `untrusted_revision` with `fragment` in its message (any message when omitted). */
export function expectUntrusted(action: () => unknown, fragment = ''): void {
  let caught: unknown;
  try {
    action();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(GitfleetError);
  expect((caught as GitfleetError).code).toBe('untrusted_revision');
  expect((caught as GitfleetError).message).toContain(fragment);
}
