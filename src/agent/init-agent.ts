import { access, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { parseAgentConfig } from '../schema/agent-config.js';
import { GitfleetError } from '../schema/gitfleet-error.js';
import type { Labels } from '../schema/fleet.js';
import { overlayLabels, sortedLabels } from '../schema/labels.js';
import { generateSshKey } from '../git/generate-ssh-key.js';
import { detectLabels } from './load-agent-config.js';

export interface InitAgentOptions {
  dir: string;
  id: string;
  labels: Labels;
  remotes: string[];
  ref: string;
  stateDir: string;
  rootDir: string;
  /** Replace an existing agent.yaml and key. */
  force: boolean;
}

function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

export interface InitAgentResult {
  config: string;
  key: string;
  publicKey: string;
  /** `devices/<id>.yaml` to commit to the fleet repository: central labels and the device's key. */
  record: string;
}

/**
 * `gitfleet agent init`: writes a device key pair (Ed25519, OpenSSH format, private key mode 0600) and a
 * starter agent.yaml into `dir`, and returns the device record to commit. Refuses to overwrite either
 * unless `force`: a replaced key orphans the device's signed history.
 */
export async function initAgent(options: InitAgentOptions): Promise<InitAgentResult> {
  const config = join(options.dir, 'agent.yaml');
  const key = join(options.dir, 'device_ed25519');
  const agent = {
    device: { id: options.id, labels: sortedLabels(options.labels) },
    source: { remotes: options.remotes, ref: options.ref },
    trust: { allowedSigners: './allowed_signers', policy: 'head' },
    dirs: { state: options.stateDir, root: options.rootDir },
    state: { key: './device_ed25519', push: true },
    poll: { intervalSeconds: 60, jitter: 0.1 },
  };
  const text = `# gitfleet agent configuration; relative paths are relative to this file.\n${stringify(agent)}`;
  // The same checks as loading it: a bad id or remote is refused before anything is written.
  const parsed = parseAgentConfig({ path: config, data: text });
  if (!parsed.ok) throw new GitfleetError('invalid_manifest', parsed.errors.map((e) => e.message).join('; '));
  if (!options.force) {
    for (const path of [config, key, `${key}.pub`]) {
      if (await exists(path))
        throw new GitfleetError('invalid_manifest', `${path} exists (--force replaces it)`);
    }
  }
  const generated = generateSshKey(options.id);
  await mkdir(options.dir, { recursive: true });
  await writeFile(key, generated.privateKey, { mode: 0o600 });
  await writeFile(`${key}.pub`, `${generated.publicKey}\n`);
  await writeFile(config, text);
  const record = stringify(
    {
      kind: 'Device',
      id: options.id,
      labels: sortedLabels(overlayLabels(detectLabels(), options.labels)),
      publicKey: generated.publicKey,
    },
    { lineWidth: 0 },
  );
  return { config, key, publicKey: generated.publicKey, record: `# devices/${options.id}.yaml\n${record}` };
}
