import type { Labels } from './fleet.js';
import { makeLabels } from './labels.js';
import type { ParseResult } from './parse-fleet.js';
import type { SourceFile } from './parse-yaml-documents.js';
import { parseSingleDocument } from './parse-single-document.js';

export interface AgentRemote {
  url: string;
  username?: string;
  password?: string;
  token?: string;
}

/** agent.yaml with its defaults filled in; paths as written (the shell resolves them). Mirrors `agent.schema.json`. */
export interface AgentConfig {
  device: { id: string; labels: Labels };
  source: { remotes: AgentRemote[]; ref: string; thinPacks: boolean };
  trust: { allowedSigners: string; policy: 'head' | 'all'; timestamp: boolean };
  dirs: { state: string; root: string };
  state: { key: string | undefined; push: boolean; remote: string | undefined };
  poll: { intervalSeconds: number; jitter: number };
}

interface RawConfig {
  device: { id: string; labels?: Record<string, string> };
  source: { remotes: (string | AgentRemote)[]; ref?: string; thinPacks?: boolean };
  trust: { allowedSigners: string; policy?: 'head' | 'all'; timestamp?: boolean };
  dirs: { state: string; root: string };
  state?: { key?: string; push?: boolean; remote?: string };
  poll?: { intervalSeconds?: number; jitter?: number };
}

/** Parses agent.yaml: one document, schema-checked, errors at `file:line:col`. Pure. */
export function parseAgentConfig(file: SourceFile): ParseResult<AgentConfig> {
  const parsed = parseSingleDocument(file, 'Agent');
  if (!parsed.ok) return { ok: false, errors: parsed.errors, warnings: [] };
  const raw = parsed.doc.value as RawConfig;
  return {
    ok: true,
    value: {
      device: { id: raw.device.id, labels: makeLabels(Object.entries(raw.device.labels ?? {})) },
      source: {
        remotes: raw.source.remotes.map((r) => (typeof r === 'string' ? { url: r } : { ...r })),
        ref: raw.source.ref ?? 'main',
        thinPacks: raw.source.thinPacks ?? false,
      },
      trust: {
        allowedSigners: raw.trust.allowedSigners,
        policy: raw.trust.policy ?? 'head',
        timestamp: raw.trust.timestamp ?? false,
      },
      dirs: { ...raw.dirs },
      state: { key: raw.state?.key, push: raw.state?.push ?? true, remote: raw.state?.remote },
      poll: { intervalSeconds: raw.poll?.intervalSeconds ?? 60, jitter: raw.poll?.jitter ?? 0.1 },
    },
    warnings: [],
  };
}
