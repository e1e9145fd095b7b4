import type { SourceLocation } from './problem.js';

/**
 * A labelset: unique keys, string values exactly as written. Built with a null prototype so that keys such
 * as `__proto__` are plain labels.
 */
export type Labels = Readonly<Record<string, string>>;

/** One app a spec asks for, or one packet a packet requires. Mirrors `$defs/app` in the JSON Schemas. */
export interface App {
  name: string;
  labels: Labels;
  /** A semver range on the packet's `version` label. */
  version?: string;
}

export interface Artifact {
  url: string;
  sha256: string;
  size: number;
}

export interface Hooks {
  install?: string;
  uninstall?: string;
  check?: string;
  timeoutSeconds?: number;
}

/** Mirrors `packet.schema.json`. Identity is name + labelset. */
export interface Packet {
  name: string;
  labels: Labels;
  artifact: Artifact;
  hooks: Hooks;
  requires: App[];
  location: SourceLocation;
}

/** Mirrors `spec.schema.json`. */
export interface Spec {
  id: string;
  target: Labels;
  priority: number;
  rollout?: { percent: number };
  apps: App[];
  location: SourceLocation;
}

/** Mirrors `device.schema.json`. */
export interface DeviceRecord {
  id: string;
  labels: Labels;
  publicKey?: string;
  allowEmpty: boolean;
  location: SourceLocation;
}

/** Mirrors `fleet.schema.json`, with its defaults filled in. */
export interface FleetSettings {
  version: number;
  artifacts: { mirrors: string[] };
  guards: { allowEmpty: boolean };
  /** Whether devices require a fresh signed timestamp (DESIGN.md §3 step 2). */
  trust: { timestamp: boolean };
  location: SourceLocation;
}

/** A whole parsed fleet repository. Lists are sorted (packets by identity, specs and devices by id). */
export interface Fleet {
  settings: FleetSettings;
  packets: Packet[];
  specs: Spec[];
  devices: DeviceRecord[];
}

/** A device as the resolver sees it: its id (for rollout buckets) and its labels. */
export interface Device {
  id: string;
  labels: Labels;
}

/** A packet as a device has it installed (from `--installed FILE` or the device's state). */
export interface InstalledPacket {
  name: string;
  labels: Labels;
  sha256?: string;
  /** Names of the packets it required when installed; orders uninstalls (dependents first). */
  requires: readonly string[];
}
