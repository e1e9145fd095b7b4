import type { Writable } from 'node:stream';

export type LogLevel = 'info' | 'warn' | 'error';

/** Where the agent says what it does. Fields are plain values; never credentials (URLs are redacted first). */
export interface AgentLog {
  log(level: LogLevel, message: string, fields?: Record<string, unknown>): void;
  /** A progress line (downloads): shown on a terminal only, replaced in place. */
  progress(message: string): void;
}

/**
 * JSON lines (`{"time","level","msg",...fields}`) when `stream` is not a terminal (journald, files), readable
 * lines when it is.
 */
export function createAgentLog(stream: Writable & { isTTY?: boolean } = process.stderr): AgentLog {
  const tty = stream.isTTY === true;
  let progressShown = false;
  const clearProgress = () => {
    if (progressShown) stream.write('\r\x1b[K');
    progressShown = false;
  };
  return {
    log(level, message, fields = {}) {
      if (!tty) {
        stream.write(
          `${JSON.stringify({ time: new Date().toISOString(), level, msg: message, ...fields })}\n`,
        );
        return;
      }
      clearProgress();
      const extra = Object.entries(fields)
        .map(([k, v]) => ` ${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
        .join('');
      const time = new Date().toTimeString().slice(0, 8);
      stream.write(`${time} ${level === 'info' ? '' : `${level.toUpperCase()} `}${message}${extra}\n`);
    },
    progress(message) {
      if (!tty) return;
      stream.write(`\r\x1b[K${message}`);
      progressShown = true;
    },
  };
}

/** A log that drops everything (library callers that do not want output). */
export const silentLog: AgentLog = { log: () => undefined, progress: () => undefined };
