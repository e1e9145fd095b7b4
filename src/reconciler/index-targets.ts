import { compareStrings } from '../schema/compare-strings.js';
import type { Labels, Spec } from '../schema/fleet.js';
import { labelValue } from '../schema/labels.js';
import { isGlob, matchLabelValue } from './match-label-value.js';

/**
 * Rule 1 for many devices: one bitset of specs (bit = position in the spec order) per target key and
 * device value, holding the specs whose target that value satisfies on that key, plus every spec whose
 * target lacks the key. A device's targeted specs are the AND of its bitsets over all target keys, so a
 * device costs a few lookups and a few dozen word operations however many specs there are.
 */
export interface TargetIndex {
  /** 32-bit words per bitset. */
  readonly words: number;
  /** Every spec: what a fleet without any target key matches. */
  readonly all: Uint32Array;
  readonly keys: readonly TargetKey[];
}

/** Words of bitsets memoised so far, shared by the keys of one index. */
interface Budget {
  used: number;
}

interface TargetKey {
  readonly key: string;
  /** The specs whose target does not name this key: all a device lacking the key (or with a value no target accepts) gets. */
  readonly absent: Uint32Array;
  /** Spec positions by the exact value their target asks for on this key. */
  readonly exact: ReadonlyMap<string, readonly number[]>;
  /** Specs with a glob on this key, and its compiled test. */
  readonly globs: readonly { order: number; test: (value: string) => boolean }[];
  /** Bitsets by device value, made on first sight. */
  readonly byValue: Map<string, Uint32Array>;
  /** For values met once the memo is full. */
  readonly scratch: Uint32Array;
  readonly budget: Budget;
}

/** Words of memoised bitsets per index: beyond it (devices with unique targeted values), bitsets are recomputed. */
const MEMO_WORDS = 1 << 22;

/** `specs` in their order: a spec's bit is its position in this list. */
export function indexTargets(specs: readonly Spec[]): TargetIndex {
  const words = Math.max(1, Math.ceil(specs.length / 32));
  const all = new Uint32Array(words);
  for (let i = 0; i < specs.length; i++) setBit(all, i);
  const budget: Budget = { used: 0 };
  // Specs share a few patterns: each is compiled once (and remembers its answers once).
  const tests = new Map<string, (value: string) => boolean>();
  const names = new Set<string>();
  for (const spec of specs) for (const key in spec.target) names.add(key);
  const keys = [...names].sort(compareStrings).map((key): TargetKey => {
    const absent = all.slice();
    const exact = new Map<string, number[]>();
    const globs: { order: number; test: (value: string) => boolean }[] = [];
    specs.forEach((spec, order) => {
      if (!Object.hasOwn(spec.target, key)) return;
      absent[order >>> 5] = (absent[order >>> 5] as number) & ~(1 << (order & 31));
      const pattern = spec.target[key] ?? '';
      if (isGlob(pattern)) {
        let test = tests.get(pattern);
        if (!test) tests.set(pattern, (test = matchLabelValue(pattern)));
        globs.push({ order, test });
      } else {
        const list = exact.get(pattern);
        if (list) list.push(order);
        else exact.set(pattern, [order]);
      }
    });
    return { key, absent, exact, globs, byValue: new Map(), scratch: new Uint32Array(words), budget };
  });
  return { words, all, keys };
}

function setBit(bits: Uint32Array, i: number): void {
  bits[i >>> 5] = (bits[i >>> 5] as number) | (1 << (i & 31));
}

/** The bitset of one key for one device value (undefined: the device lacks the key). */
function bitsFor(target: TargetKey, value: string | undefined): Uint32Array {
  if (value === undefined) return target.absent;
  const known = target.byValue.get(value);
  if (known) return known;
  const exact = target.exact.get(value);
  let bits: Uint32Array | undefined;
  for (const glob of target.globs) {
    if (!glob.test(value)) continue;
    bits ??= fresh(target);
    setBit(bits, glob.order);
  }
  if (exact) {
    bits ??= fresh(target);
    for (const order of exact) setBit(bits, order);
  }
  // A value no target accepts gets what a device lacking the key gets; only hits need memory.
  bits ??= target.absent;
  if (bits !== target.scratch) target.byValue.set(value, bits);
  return bits;
}

function fresh(target: TargetKey): Uint32Array {
  if (target.budget.used + target.absent.length > MEMO_WORDS) {
    target.scratch.set(target.absent);
    return target.scratch;
  }
  target.budget.used += target.absent.length;
  return target.absent.slice();
}

/** Writes into `out` the specs whose target matches the labels (rule 1; rollout is not applied). */
export function matchTargets(index: TargetIndex, labels: Labels, out: Uint32Array): void {
  const { keys, words } = index;
  if (keys.length === 0) {
    out.set(index.all);
    return;
  }
  for (let k = 0; k < keys.length; k++) {
    const target = keys[k] as TargetKey;
    const bits = bitsFor(target, labelValue(labels, target.key));
    if (k === 0) out.set(bits);
    else for (let w = 0; w < words; w++) out[w] = (out[w] as number) & (bits[w] as number);
  }
}
