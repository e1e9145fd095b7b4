import { minimatch } from 'minimatch';

const globCharacters = /[*?[\]{}]/;

/** A target value is a glob when it has glob characters or starts with `!` (negation). */
export function isGlob(value: string): boolean {
  return globCharacters.test(value) || value.startsWith('!');
}

/**
 * Compiles one target value into a test of a device's label value: exact string equality, or a
 * minimatch pattern (`eu-*`, `{alpha,beta}`, `!lab-*`) when the value has glob characters.
 */
export function matchLabelValue(pattern: string): (value: string) => boolean {
  if (!isGlob(pattern)) return (value) => value === pattern;
  return (value) => minimatch(value, pattern, { dot: true, nocomment: true });
}
