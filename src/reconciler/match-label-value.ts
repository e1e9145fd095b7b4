import { Minimatch } from 'minimatch';

const globCharacters = /[*?[\]{}]/;

/** A target value is a glob when it has glob characters or starts with `!` (negation). */
export function isGlob(value: string): boolean {
  return globCharacters.test(value) || value.startsWith('!');
}

/**
 * Compiles one target value into a test of a device's label value: exact string equality, or a
 * minimatch pattern (`eu-*`, `{alpha,beta}`, `!lab-*`) when the value has glob characters. A glob is
 * compiled once and remembers its answer per value (label values repeat across a fleet).
 */
export function matchLabelValue(pattern: string): (value: string) => boolean {
  if (!isGlob(pattern)) return (value) => value === pattern;
  const glob = new Minimatch(pattern, { dot: true, nocomment: true });
  const answers = new Map<string, boolean>();
  return (value) => {
    let answer = answers.get(value);
    if (answer === undefined) answers.set(value, (answer = glob.match(value)));
    return answer;
  };
}
