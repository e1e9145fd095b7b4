import type { Labels } from './fleet.js';

/** A fresh labelset with a null prototype, so a key named `__proto__` is just a key. */
export function makeLabels(entries: Iterable<readonly [string, string]> = []): Record<string, string> {
  const labels = Object.create(null) as Record<string, string>;
  for (const [k, v] of entries) labels[k] = v;
  return labels;
}

/**
 * The value of `key` in a labelset, or undefined when it has none. Label values are strings and nothing
 * a labelset inherits is one, so one lookup answers what `Object.hasOwn` and a read would.
 */
export function labelValue(labels: Labels, key: string): string | undefined {
  const value: unknown = labels[key];
  return typeof value === 'string' ? value : undefined;
}

/** `base` overlaid by `top`: on a shared key, `top` wins. */
export function overlayLabels(base: Labels, top: Labels): Labels {
  return makeLabels([...Object.entries(base), ...Object.entries(top)]);
}

// Labelsets are immutable once made, and parsed manifests are reused across reads, so each key is
// computed once (sorting 10,000 packets asks for it on every comparison).
const keys = new WeakMap<Labels, string>();

/** A canonical string for a labelset (keys sorted), used for identity and as a cache key. */
export function labelsKey(labels: Labels): string {
  let key = keys.get(labels);
  if (key === undefined) {
    key = JSON.stringify(
      Object.keys(labels)
        .sort()
        .map((k) => [k, labels[k]]),
    );
    keys.set(labels, key);
  }
  return key;
}

/** `{a: 1, b: x}` style text for messages. */
export function formatLabels(labels: Labels): string {
  const keys = Object.keys(labels).sort();
  return `{${keys.map((k) => `${k}: ${labels[k]}`).join(', ')}}`;
}

/** A labels object with sorted keys and an ordinary prototype, for JSON and YAML output. */
export function sortedLabels(labels: Labels): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(labels).sort())
    Object.defineProperty(out, k, { value: labels[k], enumerable: true });
  return out;
}
