import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { stringify } from 'yaml';
import type { Packet, Spec } from '../src/schema/fleet.js';
import { sortedLabels } from '../src/schema/labels.js';
import { commitFiles, git, type SigningKey } from '../test/support/git-fixture.js';
import { generateFleet } from './generate-fleet.js';

/**
 * A large fleet repository for the git benchmarks, written by stock git: the generated fleet's packets,
 * specs and device records as one YAML file each (10,000 manifests by default), then a history of
 * one-file commits imported with `git fast-import`, and a tip signed by `signingKey`.
 */

export interface FleetRepoShape {
  packets: number;
  specs: number;
  devices: number;
  commits: number;
}

export const benchShape: FleetRepoShape = { packets: 4_000, specs: 1_000, devices: 5_000, commits: 5_000 };

function packetYaml(p: Packet): string {
  return stringify({
    kind: 'Packet',
    name: p.name,
    labels: sortedLabels(p.labels),
    artifact: p.artifact,
    ...(p.requires.length > 0
      ? {
          requires: p.requires.map((r) => ({
            name: r.name,
            labels: sortedLabels(r.labels),
            version: r.version,
          })),
        }
      : {}),
  });
}

function specYaml(s: Spec): string {
  return stringify({
    kind: 'Spec',
    id: s.id,
    target: sortedLabels(s.target),
    priority: s.priority,
    ...(s.rollout ? { rollout: s.rollout } : {}),
    apps: s.apps.map((a) => ({
      name: a.name,
      labels: sortedLabels(a.labels),
      ...(a.version ? { version: a.version } : {}),
    })),
  });
}

/** The fleet's files by repository path; the first device's id is returned for resolving one device. */
export function fleetFiles(seed: number, shape: FleetRepoShape = benchShape) {
  const { fleet, devices } = generateFleet(seed, shape);
  const files = new Map<string, string>([['fleet.yaml', 'kind: Fleet\n']]);
  fleet.packets.forEach((p, i) => files.set(`packets/${p.name}/${i}.yaml`, packetYaml(p)));
  for (const s of fleet.specs) files.set(`specs/${s.id}.yaml`, specYaml(s));
  // Device records sharded by fleet, as a large fleet repository would keep them: without thin packs a
  // changed tree is fetched whole, so a flat folder of 5,000 records costs ~120 KB per changed record.
  for (const d of devices) {
    const record = stringify({ kind: 'Device', id: d.id, labels: sortedLabels(d.labels) });
    files.set(`devices/${d.labels.fleet ?? 'none'}/${d.id}.yaml`, record);
  }
  return { files, devices };
}

function data(text: string): string {
  return `data ${Buffer.byteLength(text)}\n${text}\n`;
}

/**
 * Creates a repository at `dir` holding `files` in its first commit and `commits - 1` more commits that
 * each touch one device record, then one more signed commit. Returns the tip.
 */
export function buildFleetRepo(
  dir: string,
  files: Map<string, string>,
  commits: number,
  key: SigningKey,
): string {
  mkdirSync(dir, { recursive: true });
  git(dir, ['init', '-q', '-b', 'main']);
  const paths = [...files.keys()].filter((p) => p.startsWith('devices/'));
  const chunks: string[] = [];
  const when = 1_700_000_000;
  for (let i = 0; i < commits - 1; i++) {
    chunks.push(
      `commit refs/heads/main\ncommitter Bench <bench@fleet.test> ${when + i} +0000\n${data(`change ${i}`)}`,
    );
    if (i === 0) for (const [path, text] of files) chunks.push(`M 100644 inline ${path}\n${data(text)}`);
    else {
      const path = paths[i % paths.length] as string;
      chunks.push(`M 100644 inline ${path}\n${data(`${files.get(path)}# revision ${i}\n`)}`);
    }
  }
  execFileSync('git', ['fast-import', '--quiet'], {
    cwd: dir,
    input: chunks.join(''),
    maxBuffer: 1 << 30,
    env: { ...process.env, GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1' },
  });
  git(dir, ['reset', '-q', '--hard', 'main']);
  return commitFiles(
    dir,
    { 'specs/bench-signed.yaml': 'kind: Spec\nid: bench-signed\ntarget: { fleet: none }\napps: []\n' },
    {
      message: 'Signed tip',
      signingKey: key,
    },
  );
}
