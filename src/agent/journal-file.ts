import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { GitfleetError } from '../schema/gitfleet-error.js';
import { emptyJournal, parseJournal, type Journal } from '../schema/parse-journal.js';
import { readIfExists } from './read-if-exists.js';
import { writeFileAtomic } from './write-file-atomic.js';

/**
 * `<state>/journal.json`: the device's installed packets, its bad packets and the step in flight. Every
 * change replaces the whole file atomically (temp file, fsync, rename), so after a crash it holds exactly
 * the last completed write.
 */
export class JournalFile {
  private constructor(
    readonly path: string,
    private current: Journal,
  ) {}

  /**
   * Reads the journal, or starts an empty one. A journal that does not parse is refused
   * (`invalid_manifest`): the agent will not guess what a device has installed.
   */
  static async open(stateDir: string): Promise<JournalFile> {
    await mkdir(stateDir, { recursive: true });
    const path = join(stateDir, 'journal.json');
    const text = await readIfExists(path);
    if (text === undefined) return new JournalFile(path, emptyJournal);
    const parsed = parseJournal(text);
    if (!parsed.ok) {
      throw new GitfleetError('invalid_manifest', `${path} is damaged: ${parsed.message}`, {
        hint: 'move it aside to start over; the next pass reinstalls what the fleet asks for',
      });
    }
    return new JournalFile(path, parsed.value);
  }

  get journal(): Journal {
    return this.current;
  }

  /** Replaces the journal; when this returns, the new content survives a power cut. */
  async write(changes: Partial<Journal>): Promise<void> {
    const next = { ...this.current, ...changes };
    await writeFileAtomic(this.path, `${JSON.stringify(next, null, 1)}\n`);
    this.current = next;
  }
}
