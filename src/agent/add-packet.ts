import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { isAbsolute, join, posix, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import semver from 'semver';
import { stringify } from 'yaml';
import { readFleetDir } from '../git/read-fleet-dir.js';
import type { Labels, Packet } from '../schema/fleet.js';
import { writeFileAtomic } from './write-file-atomic.js';
import { isInside } from './is-inside.js';
import { hasUrlScheme, packetNamePattern } from '../schema/packet-name.js';
import { GitfleetError } from '../schema/gitfleet-error.js';
import { formatLabels, labelsKey, sortedLabels } from '../schema/labels.js';
import { FLEET_FILE, parseFleetFile } from '../schema/parse-fleet.js';
import { parseLabelArgs } from '../schema/parse-label-args.js';
import { locatedMessage } from '../schema/problem.js';
import { packArtifact, scanSource, type SourceTree } from './pack-artifact.js';

export type HookName = 'install' | 'uninstall' | 'check';
const hookNames: readonly HookName[] = ['install', 'uninstall', 'check'];

export interface AddPacketOptions {
  /** The directory to pack into the artifact. */
  srcDir: string;
  /** The fleet repository; must hold a fleet.yaml. */
  fleetDir: string;
  /** Where artifacts are stored by content, as `<name>/<sha256>.tar.gz`; default `<fleetDir>/artifacts`. */
  artifactsDir?: string;
  name: string;
  /** `k=v` arguments, as `--label` takes them. */
  labels?: readonly string[];
  /** Paths inside SRC_DIR of regular files. */
  hooks?: Partial<Record<HookName, string>>;
  timeoutSeconds?: number;
  /** `name[@range]` arguments. */
  requires?: readonly string[];
  /** Replace a packet of the same name and labels whose artifact, hooks or requires differ. */
  force?: boolean;
}

/** A packet manifest as written (packet.schema.json). */
export interface PacketManifest {
  kind: 'Packet';
  name: string;
  labels: Record<string, string>;
  artifact: { url: string; sha256: string; size: number };
  hooks?: Partial<Record<HookName, string>> & { timeoutSeconds?: number };
  requires?: { name: string; labels?: Record<string, string>; version?: string }[];
}

export interface AddPacketResult {
  /** The manifest file: `fleetDir` joined with `file`. */
  path: string;
  /** The manifest file, relative to the fleet repository. */
  file: string;
  manifest: PacketManifest;
  /** The stored artifact. */
  artifactPath: string;
  sha256: string;
  size: number;
  /** Entries of the archive (files, directories, symlinks). */
  entries: number;
  /** An existing packet of the same identity was replaced (`force`). */
  replaced: boolean;
  /** The same packet was already in the fleet: no manifest was written. */
  unchanged: boolean;
  warnings: string[];
}

// A version label is used as a file name only when it is this tame; otherwise the sha256 prefix is.
const fileStemPattern = /^[0-9A-Za-z][0-9A-Za-z.+_-]{0,127}$/;
// eslint-disable-next-line no-control-regex
const controlCharacters = /[\u0000-\u001f]/;

function invalid(message: string): never {
  throw new GitfleetError('invalid_manifest', message);
}

function checkName(name: string, what: string): string {
  if (!packetNamePattern.test(name)) invalid(`${what} '${name}' must match [a-z0-9][a-z0-9._-]{0,63}`);
  return name;
}

function parseLabels(args: readonly string[]): Labels {
  try {
    return parseLabelArgs(args);
  } catch (error) {
    invalid(error instanceof Error ? error.message : String(error));
  }
}

/** `name[@range]` → an app of `requires`. */
function parseRequirement(arg: string, packet: string): { name: string; version?: string } {
  const at = arg.indexOf('@');
  const name = checkName(at < 0 ? arg : arg.slice(0, at), `--requires ${arg}: packet name`);
  if (name === packet) invalid(`--requires ${arg}: a packet cannot require itself`);
  if (at < 0) return { name };
  const version = arg.slice(at + 1);
  if (version === '' || semver.validRange(version) === null)
    invalid(`--requires ${arg}: '${version}' is not a semver range`);
  return { name, version };
}

/** A hook path as a path inside the artifact (`bin/install.sh`), or a refusal saying why not. */
function normaliseHook(hook: HookName, value: string): string {
  const shown = `hook ${hook} '${value}'`;
  if (value === '' || controlCharacters.test(value)) invalid(`${shown} is not a path`);
  if (value.startsWith('/') || isAbsolute(value))
    invalid(`${shown} is an absolute path: hooks are paths inside the artifact`);
  if (value.split('/').includes('..')) invalid(`${shown} contains '..': hooks are paths inside the artifact`);
  const path = posix.normalize(value).replace(/\/+$/, '');
  if (path === '.' || path === '') invalid(`${shown} names the artifact's root, not a file`);
  return path;
}

/** Checks each hook against the packed tree; returns warnings (a hook that is not executable). */
function checkHooksInTree(hooks: Map<HookName, string>, tree: SourceTree, srcDir: string): string[] {
  const byPath = new Map(tree.entries.map((e) => [e.path, e]));
  const warnings: string[] = [];
  for (const [hook, path] of hooks) {
    const entry = byPath.get(path);
    const shown = `hook ${hook} '${path}'`;
    if (!entry) invalid(`${shown} does not exist in ${srcDir}`);
    if (entry.type !== 'file') invalid(`${shown} is a ${entry.type} in ${srcDir}, not a regular file`);
    if (entry.mode !== 0o755)
      warnings.push(`${shown} is not executable (its owner has no x bit): the agent cannot run it as is`);
  }
  return warnings;
}

function checkTimeout(seconds: number | undefined): number | undefined {
  if (seconds !== undefined && !(Number.isInteger(seconds) && seconds >= 1 && seconds <= 86400))
    invalid(`timeout ${seconds} must be a whole number of seconds from 1 to 86400`);
  return seconds;
}

async function assertFleetDir(fleetDir: string): Promise<void> {
  const info = await stat(join(fleetDir, FLEET_FILE)).catch(() => undefined);
  if (!info?.isFile())
    invalid(`${fleetDir} holds no ${FLEET_FILE}: not a fleet repository (\`gitfleet init\` writes one)`);
}

/** sha256 of the uncompressed tar stream of a `.tar.gz`. */
async function tarDigest(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), createGunzip(), async (chunks: AsyncIterable<Buffer>) => {
    for await (const chunk of chunks) hash.update(chunk);
  });
  return hash.digest('hex');
}

/**
 * Whether the artifact of an existing packet, when it is in this store, holds the same tar bytes as the
 * one just packed: the same packet compressed by another deflate engine (another Node's zlib).
 */
async function sameTarContent(existing: Packet, artifactsDir: string, packed: string): Promise<boolean> {
  const url = existing.artifact.url;
  if (hasUrlScheme(url)) return false;
  const stored = resolve(artifactsDir, url);
  if (!isInside(resolve(artifactsDir), stored)) return false;
  if (!(await stat(stored).catch(() => undefined))?.isFile()) return false;
  const [a, b] = await Promise.all([tarDigest(stored).catch(() => ''), tarDigest(packed)]);
  return a === b;
}

function where(packet: Packet): string {
  return `${packet.location.file}:${packet.location.line}:${packet.location.col}`;
}

function hookKey(hooks: PacketManifest['hooks'] | Packet['hooks']): string {
  const h = hooks ?? {};
  return JSON.stringify([
    ...hookNames.map((n) => (h[n] === undefined ? null : posix.normalize(h[n]).replace(/\/+$/, ''))),
    h.timeoutSeconds === undefined ? null : String(h.timeoutSeconds),
  ]);
}

function requiresKey(requires: readonly { name: string; labels?: Labels; version?: string }[]): string {
  return JSON.stringify(requires.map((r) => [r.name, labelsKey(r.labels ?? {}), r.version ?? null]));
}

/** A parsed packet as the manifest it was written as (for `unchanged` results). */
function manifestOf(packet: Packet): PacketManifest {
  const hooks = packet.hooks;
  return {
    kind: 'Packet',
    name: packet.name,
    labels: sortedLabels(packet.labels),
    artifact: { ...packet.artifact, size: Number(packet.artifact.size) },
    ...(Object.keys(hooks).length === 0
      ? {}
      : {
          hooks: {
            ...hooks,
            ...(hooks.timeoutSeconds === undefined ? {} : { timeoutSeconds: Number(hooks.timeoutSeconds) }),
          },
        }),
    ...(packet.requires.length === 0
      ? {}
      : {
          requires: packet.requires.map((r) => ({
            name: r.name,
            ...(Object.keys(r.labels).length === 0 ? {} : { labels: sortedLabels(r.labels) }),
            ...(r.version === undefined ? {} : { version: r.version }),
          })),
        }),
  };
}

interface FleetPackets {
  /** Packets of the same name and labels, with how many documents their file holds. */
  same: { packet: Packet; documents: number }[];
  /** Every file under packets/ (repository paths). */
  files: Set<string>;
}

/** The packets of the fleet with this identity. Files are parsed one by one, so a broken file elsewhere does not hide them. */
async function findPackets(fleetDir: string, name: string, labels: Labels): Promise<FleetPackets> {
  const key = labelsKey(labels);
  const same: FleetPackets['same'] = [];
  const files = new Set<string>();
  for (const file of await readFleetDir(fleetDir)) {
    if (!file.path.startsWith('packets/')) continue;
    files.add(file.path);
    const parsed = parseFleetFile(file);
    const documents =
      parsed.packets.length + parsed.specs.length + parsed.devices.length + parsed.errors.length;
    for (const packet of parsed.packets)
      if (packet.name === name && labelsKey(packet.labels) === key) same.push({ packet, documents });
  }
  return { same, files };
}

/** `packets/<name>/<version or sha256 prefix>.yaml`, or with an identity suffix when that file is taken. */
function newManifestFile(name: string, labels: Labels, sha256: string, taken: Set<string>): string {
  const version = labels.version;
  const stem = version !== undefined && fileStemPattern.test(version) ? version : sha256.slice(0, 12);
  const identity = createHash('sha256').update(labelsKey(labels)).digest('hex').slice(0, 8);
  const candidates = [`packets/${name}/${stem}.yaml`, `packets/${name}/${stem}-${identity}.yaml`];
  const free = candidates.find((c) => !taken.has(c));
  if (free === undefined)
    invalid(`${candidates.join(' and ')} already hold other manifests: move one of them, then add again`);
  return free;
}

const schemaLinePrefix = '# yaml-language-server: $schema=';

/** The manifest text: a schema line for editors (the schemas `gitfleet init` writes), then the document. */
function manifestText(file: string, manifest: PacketManifest, keepSchemaLine?: string): string {
  const schema = posix.relative(posix.dirname(file), 'schemas/packet.schema.json');
  const line = keepSchemaLine ?? `${schemaLinePrefix}${schema}`;
  return `${line}\n${stringify(manifest, { lineWidth: 0 })}`;
}

/**
 * Packs `srcDir` into a reproducible artifact (see `packArtifact`), stores it by content as
 * `<artifactsDir>/<name>/<sha256>.tar.gz` and writes the packet manifest: `packets/<name>/<version or
 * sha256 prefix>.yaml` for a new packet, the existing file for a replaced one.
 *
 * Throws `invalid_manifest` for a bad name, labels, hook, requirement or timeout, a source tree that
 * cannot be packed safely, or a directory without fleet.yaml; `duplicate_packet` when a packet of the
 * same name and labels exists with another artifact, hooks or requires (unless `force`), or exists twice.
 * When it throws, no manifest is written and no artifact stored (an artifact stored just before a failed
 * manifest write is harmless: it is addressed by content).
 *
 * Idempotent: adding the same packet again writes no manifest (`unchanged`). Artifacts are renamed into
 * place complete, before the manifest that names them; manifests are replaced by rename too.
 */
export async function addPacket(options: AddPacketOptions): Promise<AddPacketResult> {
  const { srcDir, fleetDir } = options;
  const name = checkName(options.name, 'packet name');
  const labels = parseLabels(options.labels ?? []);
  const requires = (options.requires ?? []).map((r) => parseRequirement(r, name));
  const timeoutSeconds = checkTimeout(options.timeoutSeconds);
  const hookPaths = new Map<HookName, string>();
  for (const hook of hookNames) {
    const value = options.hooks?.[hook];
    if (value !== undefined) hookPaths.set(hook, normaliseHook(hook, value));
  }
  await assertFleetDir(fleetDir);
  const tree = await scanSource(srcDir);
  const warnings = checkHooksInTree(hookPaths, tree, srcDir);

  const artifactsDir = options.artifactsDir ?? join(fleetDir, 'artifacts');
  await mkdir(artifactsDir, { recursive: true });
  const temp = join(artifactsDir, `.packing-${randomBytes(6).toString('hex')}.tar.gz`);
  const packed = await packArtifact(srcDir, temp, tree);
  try {
    const { sha256, size } = packed;
    const manifest: PacketManifest = {
      kind: 'Packet',
      name,
      labels: sortedLabels(labels),
      artifact: { url: `${name}/${sha256}.tar.gz`, sha256, size },
      ...(hookPaths.size === 0 && timeoutSeconds === undefined
        ? {}
        : {
            hooks: {
              ...Object.fromEntries([...hookPaths].map(([hook, path]) => [hook, `./${path}`])),
              ...(timeoutSeconds === undefined ? {} : { timeoutSeconds }),
            },
          }),
      ...(requires.length === 0 ? {} : { requires }),
    };
    const artifactPath = join(artifactsDir, name, `${sha256}.tar.gz`);
    const outcome = (
      file: string,
      written: PacketManifest,
      stored: string,
      how: { replaced: boolean; unchanged: boolean },
    ): AddPacketResult => ({
      path: join(fleetDir, file),
      file,
      manifest: written,
      artifactPath: stored,
      sha256: written.artifact.sha256,
      size: written.artifact.size,
      entries: packed.entries.length,
      ...how,
      warnings,
    });
    const identity = `packet ${name} ${formatLabels(labels)}`;

    const { same, files } = await findPackets(fleetDir, name, labels);
    const [existing, second] = same;
    if (second && existing) {
      throw new GitfleetError(
        'duplicate_packet',
        `${identity} is defined twice already, at ${where(existing.packet)} and ${where(second.packet)}: fix the fleet first`,
        { hint: 'run `gitfleet validate` to see every problem' },
      );
    }
    let file: string;
    let keepSchemaLine: string | undefined;
    if (existing) {
      const old = existing.packet;
      const sameArtifact = old.artifact.sha256 === sha256 || (await sameTarContent(old, artifactsDir, temp));
      const sameRest =
        hookKey(old.hooks) === hookKey(manifest.hooks) && requiresKey(old.requires) === requiresKey(requires);
      if (sameArtifact && sameRest) {
        // Store it anyway when it is these very bytes: that restores a missing artifact.
        if (old.artifact.sha256 === sha256) await storeArtifact(temp, artifactPath);
        const stored = old.artifact.sha256 === sha256 ? artifactPath : join(artifactsDir, old.artifact.url);
        return outcome(old.location.file, manifestOf(old), stored, { replaced: false, unchanged: true });
      }
      if (!options.force) {
        const what = sameArtifact
          ? 'the same artifact but other hooks or requires'
          : `another artifact (sha256 ${old.artifact.sha256.slice(0, 12)}… there, ${sha256.slice(0, 12)}… packed now)`;
        throw new GitfleetError(
          'duplicate_packet',
          `${identity} already exists at ${where(old)} with ${what}`,
          {
            hint: 'pass --force to replace it',
          },
        );
      }
      if (existing.documents !== 1) {
        throw new GitfleetError(
          'duplicate_packet',
          `${identity} at ${where(old)} shares its file with ${existing.documents - 1} other document(s): remove it there by hand, then add again`,
        );
      }
      file = old.location.file;
      const first = (await readFile(join(fleetDir, file), 'utf8')).split('\n', 1)[0] ?? '';
      if (first.startsWith(schemaLinePrefix)) keepSchemaLine = first;
    } else {
      file = newManifestFile(name, labels, sha256, files);
    }

    const text = manifestText(file, manifest, keepSchemaLine);
    // What is written must read back as exactly this packet, with no problem at all.
    const check = parseFleetFile({ path: file, data: text });
    const [back] = check.packets;
    if (check.errors.length > 0 || back?.name !== name || labelsKey(back.labels) !== labelsKey(labels))
      invalid(
        `the manifest for ${identity} does not validate: ${check.errors.map(locatedMessage).join('; ')}`,
      );
    warnings.push(...check.warnings.map((w) => w.message));

    await storeArtifact(temp, artifactPath);
    await mkdir(join(fleetDir, posix.dirname(file)), { recursive: true });
    await writeFileAtomic(join(fleetDir, file), text);
    return outcome(file, manifest, artifactPath, { replaced: existing !== undefined, unchanged: false });
  } finally {
    await rm(temp, { force: true });
  }
}

/** Moves a packed artifact to its content address (same bytes if something is there already). */
async function storeArtifact(temp: string, artifactPath: string): Promise<void> {
  await mkdir(join(artifactPath, '..'), { recursive: true });
  await rename(temp, artifactPath);
}
