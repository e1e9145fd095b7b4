import type { Labels } from './fleet.js';

/** A fresh labelset with a null prototype, so a key named `__proto__` is just a key. */
export function makeLabels(entries: Iterable<readonly [string, string]> = []): Record<string, string> {
  const labels = Object.create(null) as Record<string, string>;
  for (const [k, v] of entries) labels[k] = v;
  return labels;
}

/** `base` overlaid by `top`: on a shared key, `top` wins. */
export function overlayLabels(base: Labels, top: Labels): Labels {
  return makeLabels([...Object.entries(base), ...Object.entries(top)]);
}

/** A canonical string for a labelset (keys sorted), used for identity and as a cache key. */
export function labelsKey(labels: Labels): string {
  return JSON.stringify(
    Object.keys(labels)
      .sort()
      .map((k) => [k, labels[k]]),
  );
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
