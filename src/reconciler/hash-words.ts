/** FNV-1a over the 32-bit words `words[from]` to `words[to - 1]`. */
export function hashWords(words: ArrayLike<number>, from: number, to: number): number {
  let hash = 0x811c9dc5;
  for (let i = from; i < to; i++) hash = Math.imul(hash ^ (words[i] as number), 0x01000193);
  return hash >>> 0;
}

/** Whether `a[aFrom..aTo)` and `b[bFrom..bTo)` hold the same words. */
export function sameWords(
  a: ArrayLike<number>,
  aFrom: number,
  aTo: number,
  b: ArrayLike<number>,
  bFrom: number,
  bTo: number,
): boolean {
  if (aTo - aFrom !== bTo - bFrom) return false;
  for (let i = 0; i < aTo - aFrom; i++) if (a[aFrom + i] !== b[bFrom + i]) return false;
  return true;
}
