import type { Labels } from './fleet.js';
import { makeLabels } from './labels.js';

// Control characters: they would break cache keys and terminals alike.
// eslint-disable-next-line no-control-regex
const controlCharacters = /[\u0000-\u001f]/;

/**
 * Parses `k=v` arguments into a labelset. `k=` gives k the empty value; the key is everything before the
 * first `=`. Throws a plain Error naming the bad argument (a usage error, not a fleet error).
 */
export function parseLabelArgs(args: readonly string[]): Labels {
  const labels = makeLabels();
  for (const arg of args) {
    const at = arg.indexOf('=');
    const key = arg.slice(0, at);
    const value = arg.slice(at + 1);
    if (at < 1 || /\s/.test(key) || controlCharacters.test(key))
      throw new Error(`--label ${arg}: expected key=value with a non-empty key`);
    if (controlCharacters.test(value))
      throw new Error(`--label ${arg}: control characters are not allowed in a value`);
    if (Object.hasOwn(labels, key)) throw new Error(`--label ${key} is given twice`);
    labels[key] = value;
  }
  return labels;
}
