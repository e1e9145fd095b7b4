import type { AgentStep } from '../schema/parse-journal.js';

/** What the agent does on start for a step the journal says was interrupted. */
export type Recovery =
  /** Nothing was changed that matters: forget the step; the next pass plans the action again. */
  | 'retry'
  /** Remove the new slot; the previous one is still current; the next pass plans the action again. */
  | 'undo'
  /** The point of no return was passed: complete the step's work. */
  | 'finish';

/** The recovery table: one row per persisted step, with the reason for its row. */
export const recoveryTable: Readonly<Record<AgentStep, { recovery: Recovery; why: string }>> = {
  fetching: {
    recovery: 'retry',
    why: 'the cache only ever holds verified artifacts; the partial download is kept and resumed',
  },
  extracting: {
    recovery: 'undo',
    why: 'extraction renames a complete slot into place, so the slot is whole or absent; it was never current',
  },
  installing: {
    recovery: 'undo',
    why: 'the install hook may have stopped half-way; the new slot was never current, the previous one is untouched',
  },
  checking: {
    recovery: 'undo',
    why: 'the check did not pass before the interruption, so the new slot must not become current',
  },
  switching: {
    recovery: 'finish',
    why: 'install and check passed; the switch is one rename, so current names either slot and pointing it at the new one again is safe',
  },
  uninstalling: {
    recovery: 'retry',
    why: 'the packet is still installed and current; the next pass runs its uninstall hook again',
  },
  removing: {
    recovery: 'finish',
    why: 'the uninstall hook succeeded and the packet is no longer listed; only its files remain to delete',
  },
};

/**
 * The loop breaker: a packet whose action was interrupted this many times in the same step (the agent
 * killed, the device losing power) is marked bad instead of being tried again.
 */
export const maxInterruptions = 3;
