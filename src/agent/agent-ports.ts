import type { AgentStep } from '../schema/parse-journal.js';
import type { JournalFile } from './journal-file.js';
import { silentLog, type AgentLog } from './agent-log.js';
import { fetchArtifact, type FetchArtifactOptions } from './fetch-artifact.js';
import { runHook, type HookRequest, type HookResult } from './run-hook.js';

/** A point in a pass where crash tests may stop the agent: a journalled step's start or end, or recording. */
export type StepEvent = `${AgentStep | 'recording'}:${'start' | 'done'}`;

/** The agent's effects on the world beyond its own files: passed in, wired once (`defaultAgentPorts`). */
export interface AgentPorts {
  fetchArtifact: (options: FetchArtifactOptions) => Promise<string>;
  runHook: (request: HookRequest) => Promise<HookResult>;
  now: () => Date;
  log: AgentLog;
  /** Called at every step event, after the journal holds the step. */
  onStep: (event: StepEvent) => void;
}

export function defaultAgentPorts(overrides: Partial<AgentPorts> = {}): AgentPorts {
  return {
    fetchArtifact,
    runHook,
    now: () => new Date(),
    log: silentLog,
    onStep: () => undefined,
    ...overrides,
  };
}

/** What executing a plan works with. */
export interface AgentContext {
  /** Where packets are installed (`dirs.root`). */
  root: string;
  /** The content-addressed artifact cache under the state dir. */
  cacheDir: string;
  /** `fleet.yaml` artifact mirrors at the revision being applied. */
  mirrors: readonly string[];
  journal: JournalFile;
  ports: AgentPorts;
  /** Aborting (SIGTERM) stops the pass between steps. */
  signal?: AbortSignal;
}
