/**
 * Seconds until the next pass: the poll interval spread by ±`jitter` (so a fleet does not poll in step),
 * doubled after each failed pass in a row up to 16 times the interval (back off from a mirror that is
 * down without hammering it, and without polling faster than configured). `random` is in [0, 1).
 */
export function nextPollDelay(
  poll: { intervalSeconds: number; jitter: number },
  failures: number,
  random: number,
): number {
  const backoff = 2 ** Math.min(Math.max(failures, 0), 4);
  const spread = 1 + poll.jitter * (2 * random - 1);
  return poll.intervalSeconds * backoff * spread;
}
