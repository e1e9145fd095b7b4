import { arch, machine, platform } from 'node:os';
import { dirname, resolve } from 'node:path';
import { parseAgentConfig, type AgentConfig } from '../schema/agent-config.js';
import { GitfleetError } from '../schema/gitfleet-error.js';
import { overlayLabels } from '../schema/labels.js';
import { locatedMessage } from '../schema/problem.js';
import { readBounded } from '../git/read-bounded.js';

/** The labels a device reports about itself: `arch` in the fleet's naming (amd64, arm64, armv7l…) and `os`. */
export function detectLabels(): { arch: string; os: string } {
  const names: Record<string, string> = { x64: 'amd64', ia32: 'i386', arm: machine(), arm64: 'arm64' };
  return { arch: names[arch()] ?? arch(), os: platform() };
}

/**
 * Reads agent.yaml: schema-checked with `file:line:col` errors (`invalid_manifest`), relative paths made
 * absolute against the file's folder, detected `arch` and `os` added unless the file sets them.
 */
export async function loadAgentConfig(path: string): Promise<AgentConfig> {
  const data = await readBounded(path).catch((cause: unknown) => {
    throw new GitfleetError('invalid_manifest', `cannot read ${path}`, { cause });
  });
  const parsed = parseAgentConfig({ path, data });
  if (!parsed.ok) {
    throw new GitfleetError('invalid_manifest', parsed.errors.map(locatedMessage).join('\n'));
  }
  const config = parsed.value;
  const base = dirname(resolve(path));
  const at = (p: string) => resolve(base, p);
  return {
    ...config,
    device: {
      ...config.device,
      labels: overlayLabels(detectLabels(), config.device.labels),
    },
    trust: { ...config.trust, allowedSigners: at(config.trust.allowedSigners) },
    dirs: { state: at(config.dirs.state), root: at(config.dirs.root) },
    state: { ...config.state, key: config.state.key === undefined ? undefined : at(config.state.key) },
  };
}
