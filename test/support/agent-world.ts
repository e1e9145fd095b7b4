import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { stringify } from 'yaml';
import { loadAgentConfig } from '../../src/agent/load-agent-config.js';
import { packArtifact } from '../../src/agent/pack-artifact.js';
import { generateSshKey } from '../../src/git/generate-ssh-key.js';
import { stateRef } from '../../src/git/record-state.js';
import type { AgentConfig } from '../../src/schema/agent-config.js';
import { startArtifactServer, type ArtifactServer } from './artifact-server.js';
import {
  commitFiles,
  git,
  initFleetRepo,
  makeSigningKey,
  publishBare,
  writeAllowedSigners,
  type SigningKey,
} from './git-fixture.js';
import { startGitServer, type GitServer } from './git-http-server.js';

/** A file of a test packet's artifact: text, executable when `exec`. */
export type ArtifactFile = string | { text: string; exec: true };

export interface TestPacket {
  name: string;
  labels: Record<string, string>;
  files: Record<string, ArtifactFile>;
  hooks?: { install?: string; check?: string; uninstall?: string; timeoutSeconds?: number };
  requires?: { name: string; version?: string }[];
}

/** An executable POSIX shell script. */
export function script(body: string): ArtifactFile {
  return { text: `#!/bin/sh\n${body}\n`, exec: true };
}

/**
 * A whole world for agent tests: a signed fleet repository served by stock `git http-backend`, artifacts
 * packed for real and served over HTTP, and devices with their own key, config, state and root folders.
 */
export class AgentWorld {
  readonly dir = mkdtempSync(join(tmpdir(), 'gitfleet-agent-'));
  readonly work = join(this.dir, 'work');
  readonly artifactRoot = join(this.dir, 'artifacts');
  readonly signer: SigningKey;
  git!: GitServer;
  artifacts!: ArtifactServer;
  private bare = '';
  private packed = 0;

  private constructor() {
    mkdirSync(this.artifactRoot);
    this.signer = makeSigningKey(this.dir, 'release');
    writeAllowedSigners(join(this.dir, 'allowed_signers'), [this.signer]);
  }

  /** Starts the servers and commits `fleet.yaml` alone as the first signed commit. */
  static async start(): Promise<AgentWorld> {
    const world = new AgentWorld();
    world.artifacts = await startArtifactServer(world.artifactRoot);
    const fleet = stringify({
      kind: 'Fleet',
      version: 1,
      artifacts: { mirrors: [`${world.artifacts.url}/`] },
    });
    initFleetRepo(world.work, { files: { 'fleet.yaml': fleet }, signingKey: world.signer });
    const root = join(world.dir, 'served');
    mkdirSync(root);
    world.bare = publishBare(world.work, root, 'fleet');
    world.git = await startGitServer(root);
    return world;
  }

  get url(): string {
    return this.git.urlOf('fleet.git');
  }

  /** Packs the packet's files into a real artifact served by the artifact server; returns its manifest. */
  async packet(packet: TestPacket): Promise<string> {
    const src = join(this.dir, `src-${this.packed}`);
    const file = `${packet.name}-${this.packed}.tar.gz`;
    this.packed += 1;
    for (const [path, content] of Object.entries(packet.files)) {
      const target = join(src, path);
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, typeof content === 'string' ? content : content.text);
      if (typeof content !== 'string') chmodSync(target, 0o755);
    }
    const packed = await packArtifact(src, join(this.artifactRoot, file));
    return this.manifest(packet, { url: file, sha256: packed.sha256, size: packed.size });
  }

  /** A manifest for an artifact that exists (or not) as given. */
  manifest(packet: TestPacket, artifact: { url: string; sha256: string; size: number }): string {
    return stringify({
      kind: 'Packet',
      name: packet.name,
      labels: packet.labels,
      artifact,
      ...(packet.hooks ? { hooks: packet.hooks } : {}),
      ...(packet.requires ? { requires: packet.requires } : {}),
    });
  }

  /** Commits (signed) and publishes: writes or deletes (null) each file. */
  publish(files: Record<string, string | null>, message = 'Change the fleet'): string {
    const commit = commitFiles(this.work, files, { message, signingKey: this.signer });
    git(this.work, ['push', '-q', this.bare, 'main']);
    return commit;
  }

  /** A device: key, allowed_signers, agent.yaml with explicit labels; returns its loaded config. */
  async device(
    id: string,
    labels: Record<string, string>,
    extra: Record<string, unknown> = {},
  ): Promise<AgentConfig> {
    const dir = join(this.dir, 'devices', id);
    mkdirSync(dir, { recursive: true });
    const key = generateSshKey(id);
    writeFileSync(join(dir, 'device_ed25519'), key.privateKey, { mode: 0o600 });
    writeAllowedSigners(join(dir, 'allowed_signers'), [this.signer]);
    const config = {
      device: { id, labels: { arch: 'amd64', os: 'linux', ...labels } },
      source: { remotes: [this.url], ref: 'main' },
      trust: { allowedSigners: './allowed_signers' },
      dirs: { state: './state', root: './root' },
      state: { key: './device_ed25519' },
      poll: { intervalSeconds: 1, jitter: 0 },
      ...extra,
    };
    writeFileSync(join(dir, 'agent.yaml'), stringify(config));
    return loadAgentConfig(join(dir, 'agent.yaml'));
  }

  /** The served repository's state commit of device `id`, or undefined when it has none. */
  stateTip(id: string): string | undefined {
    try {
      return git(this.bare, ['rev-parse', '--verify', '-q', stateRef(id)]);
    } catch {
      return undefined;
    }
  }

  async close(): Promise<void> {
    await this.git?.close();
    await this.artifacts?.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A spec asking for `apps` on devices matching `target`, as YAML. */
export function specYaml(
  id: string,
  target: Record<string, string>,
  apps: Record<string, unknown>[],
): string {
  return stringify({ kind: 'Spec', id, target, apps });
}
