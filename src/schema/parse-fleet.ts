import semver from 'semver';
import { compareStrings } from './compare-strings.js';
import type { App, DeviceRecord, Fleet, FleetSettings, Labels, Packet, Spec } from './fleet.js';
import { formatLabels, labelsKey, makeLabels } from './labels.js';
import {
  escapePointerToken,
  parseYamlDocuments,
  type SourceFile,
  type YamlDocument,
} from './parse-yaml-documents.js';
import { compareProblems, type Problem, type SourceLocation } from './problem.js';
import { fleetFields, validateDocument, type DocumentKind } from './validate-document.js';

export type ParseResult<T> =
  { ok: true; value: T; warnings: Problem[] } | { ok: false; errors: Problem[]; warnings: Problem[] };

export const FLEET_FILE = 'fleet.yaml';
const manifestFolders = ['packets/', 'specs/', 'devices/'];

/** Which files of a repository tree are part of the fleet: `fleet.yaml` and YAML under the three folders. */
export function isFleetPath(path: string): boolean {
  return path === FLEET_FILE || (manifestFolders.some((f) => path.startsWith(f)) && /\.ya?ml$/.test(path));
}

type Raw = Record<string, unknown>;

function labelsOf(value: unknown): Labels {
  return makeLabels(Object.entries((value ?? {}) as Record<string, string>));
}

function appsOf(value: unknown): App[] {
  return ((value ?? []) as Raw[]).map((raw) => ({
    name: raw.name as string,
    labels: labelsOf(raw.labels),
    ...(raw.version === undefined ? {} : { version: raw.version as string }),
  }));
}

/** Sort order of packets: by name, then by canonical labelset. */
function comparePackets(a: Packet, b: Packet): number {
  return compareStrings(a.name, b.name) || compareStrings(labelsKey(a.labels), labelsKey(b.labels));
}

function where(location: SourceLocation): string {
  return `${location.file}:${location.line}:${location.col}`;
}

/**
 * The manifests of one file, parsed and checked on their own. A value of this type depends only on the
 * file's path and bytes, so readers may cache it by content (the git reader keys it by blob id).
 */
export interface FileManifests {
  readonly path: string;
  readonly settings: readonly FleetSettings[];
  readonly packets: readonly Packet[];
  readonly specs: readonly Spec[];
  readonly devices: readonly DeviceRecord[];
  readonly errors: readonly Problem[];
  readonly warnings: readonly Problem[];
}

/** Parses and schema-checks the documents of one fleet file. Pure; never throws on bad input. */
export function parseFleetFile(file: SourceFile): FileManifests {
  const errors: Problem[] = [];
  const warnings: Problem[] = [];
  const error = (message: string, location: SourceLocation) =>
    errors.push({ severity: 'error', code: 'invalid_manifest', message, location });
  const warn = (message: string, location: SourceLocation) =>
    warnings.push({ severity: 'warning', code: 'invalid_manifest', message, location });
  const settings: FleetSettings[] = [];
  const packets: Packet[] = [];
  const specs: Spec[] = [];
  const devices: DeviceRecord[] = [];

  const checkApps = (apps: App[], doc: YamlDocument, pointer: string) =>
    apps.forEach((app, i) => {
      if (app.version !== undefined && semver.validRange(app.version) === null) {
        error(`'${app.version}' is not a semver range`, doc.locate(`${pointer}/${i}/version`));
      }
    });

  const parsed = parseYamlDocuments(file);
  errors.push(...parsed.problems);
  const isFleetFile = file.path === FLEET_FILE;
  for (const doc of parsed.documents) {
    const raw = doc.value as Raw;
    const kind = typeof raw === 'object' && raw !== null && !Array.isArray(raw) ? raw.kind : undefined;
    const expected = isFleetFile ? ['Fleet'] : ['Packet', 'Spec', 'Device'];
    if (typeof kind !== 'string' || !expected.includes(kind)) {
      const known = ['Fleet', 'Packet', 'Spec', 'Device'];
      const what =
        typeof kind !== 'string'
          ? 'document has no kind'
          : !known.includes(kind)
            ? `unknown kind '${kind}'`
            : kind === 'Fleet'
              ? 'a Fleet document belongs in fleet.yaml'
              : `a ${kind} document belongs under ${kind.toLowerCase()}s/`;
      error(`${what}: ${file.path} may hold ${expected.join(', ')}`, doc.locate('/kind'));
      continue;
    }
    if (kind === 'Fleet') {
      for (const key of Object.keys(raw).filter((k) => !fleetFields.has(k))) {
        warn(`unknown field '${key}' in fleet.yaml is ignored`, doc.locate(`/${escapePointerToken(key)}`));
        delete raw[key];
      }
    }
    const problems = validateDocument(kind as DocumentKind, doc);
    if (problems.length > 0) {
      errors.push(...problems);
      continue;
    }
    const location = doc.locate('');
    if (kind === 'Fleet') {
      const artifacts = raw.artifacts as { mirrors?: string[] } | undefined;
      const guards = raw.guards as { allowEmpty?: boolean } | undefined;
      const trust = raw.trust as { timestamp?: boolean } | undefined;
      settings.push({
        version: (raw.version as number | undefined) ?? 1,
        artifacts: { mirrors: artifacts?.mirrors ?? [] },
        guards: { allowEmpty: guards?.allowEmpty ?? false },
        trust: { timestamp: trust?.timestamp ?? false },
        location,
      });
    } else if (kind === 'Packet') {
      const artifact = raw.artifact as Packet['artifact'];
      const packet: Packet = {
        name: raw.name as string,
        labels: labelsOf(raw.labels),
        // sha256 is compared as lowercase hex, however it was written.
        artifact: { ...artifact, sha256: artifact.sha256.toLowerCase() },
        hooks: { ...((raw.hooks ?? {}) as Packet['hooks']) },
        requires: appsOf(raw.requires),
        location,
      };
      const version = packet.labels.version;
      if (version !== undefined && semver.valid(version) === null) {
        warn(
          `version label '${version}' of packet ${packet.name} is not semver`,
          doc.locate('/labels/version'),
        );
      }
      checkApps(packet.requires, doc, '/requires');
      packets.push(packet);
    } else if (kind === 'Spec') {
      const spec: Spec = {
        id: raw.id as string,
        target: labelsOf(raw.target),
        priority: (raw.priority as number | undefined) ?? 0,
        ...(raw.rollout === undefined
          ? {}
          : { rollout: { percent: (raw.rollout as { percent: number }).percent } }),
        apps: appsOf(raw.apps),
        location,
      };
      if (Object.keys(spec.target).length === 0)
        warn(`spec ${spec.id} has an empty target: it applies to every device`, location);
      checkApps(spec.apps, doc, '/apps');
      specs.push(spec);
    } else {
      const device: DeviceRecord = {
        id: raw.id as string,
        labels: labelsOf(raw.labels),
        ...(raw.publicKey === undefined ? {} : { publicKey: raw.publicKey as string }),
        allowEmpty: (raw.allowEmpty as boolean | undefined) ?? false,
        location,
      };
      const stem = file.path.replace(/^.*\//, '').replace(/\.ya?ml$/, '');
      if (stem !== device.id) warn(`device record ${device.id} is in a file named ${stem}`, location);
      devices.push(device);
    }
  }
  return { path: file.path, settings, packets, specs, devices, errors, warnings };
}

/**
 * Parses a whole fleet repository from its files (in any order). Pure: the shell reads the files from a
 * directory or from git objects. Returns every error and warning with `file:line:col`; the result is
 * independent of the order of `files`.
 */
export function parseFleet(files: readonly SourceFile[]): ParseResult<Fleet> {
  return assembleFleet(files.filter((f) => isFleetPath(f.path)).map(parseFleetFile));
}

/**
 * Joins the parsed files of one revision into a fleet: exactly one Fleet document in fleet.yaml, unique
 * identities, sorted lists. Does not modify `parts`, so cached parts can be joined again.
 */
export function assembleFleet(parts: readonly FileManifests[]): ParseResult<Fleet> {
  const errors: Problem[] = [];
  const warnings: Problem[] = [];
  const error = (message: string, location: SourceLocation, code: Problem['code'] = 'invalid_manifest') =>
    errors.push({ severity: 'error', code, message, location });

  const sorted = [...parts].sort((a, b) => compareStrings(a.path, b.path));
  if (!sorted.some((f) => f.path === FLEET_FILE)) {
    error('no fleet.yaml: not a fleet repository (the smallest fleet.yaml is the line `kind: Fleet`)', {
      file: FLEET_FILE,
      line: 1,
      col: 1,
    });
  }
  const allSettings = sorted.flatMap((f) => f.settings);
  const [settings, ...extra] = allSettings;
  for (const second of extra) {
    if (settings)
      error(`a second Fleet document; the first is at ${where(settings.location)}`, second.location);
  }
  const packets = sorted.flatMap((f) => f.packets);
  const specs = sorted.flatMap((f) => f.specs);
  const devices = sorted.flatMap((f) => f.devices);
  for (const part of sorted) {
    errors.push(...part.errors);
    warnings.push(...part.warnings);
  }

  // Identities must be unique: a packet's name and labelset, a spec's id, a device's id.
  const firstAt = new Map<string, SourceLocation>();
  const identities = [
    ...packets.map((p) => ({
      key: `packet\u0000${p.name}\u0000${labelsKey(p.labels)}`,
      what: `packet ${p.name} ${formatLabels(p.labels)}`,
      location: p.location,
      code: 'duplicate_packet' as const,
    })),
    ...specs.map((s) => ({
      key: `spec\u0000${s.id}`,
      what: `spec id ${s.id}`,
      location: s.location,
      code: undefined,
    })),
    ...devices.map((d) => ({
      key: `device\u0000${d.id}`,
      what: `device id ${d.id}`,
      location: d.location,
      code: undefined,
    })),
  ];
  for (const { key, what, location, code } of identities) {
    const seen = firstAt.get(key);
    if (seen) error(`duplicate ${what}: also defined at ${where(seen)}`, location, code);
    else firstAt.set(key, location);
  }

  if (
    !settings &&
    sorted.some((f) => f.path === FLEET_FILE) &&
    !errors.some((e) => e.location?.file === FLEET_FILE)
  ) {
    error('fleet.yaml holds no Fleet document (the smallest one is the line `kind: Fleet`)', {
      file: FLEET_FILE,
      line: 1,
      col: 1,
    });
  }
  warnings.sort(compareProblems);
  if (errors.length > 0 || !settings) return { ok: false, errors: errors.sort(compareProblems), warnings };
  return {
    ok: true,
    value: {
      settings,
      packets: packets.sort(comparePackets),
      specs: specs.sort((a, b) => compareStrings(a.id, b.id)),
      devices: devices.sort((a, b) => compareStrings(a.id, b.id)),
    },
    warnings,
  };
}
