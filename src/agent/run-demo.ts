import { spawn } from 'node:child_process';
import { appendFile, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { diffRevisions } from '../git/diff-revisions.js';
import type { LoopbackServer } from '../git/listen-on-loopback.js';
import { readDeviceHistory, type DeviceHistory } from '../git/read-device-history.js';
import { readDeviceStates, type DeviceStates } from '../git/read-device-states.js';
import { packageRoot } from '../git/package-root.js';
import { serveGitHttp } from '../git/serve-git-http.js';
import type { FleetDiff } from '../reconciler/diff-fleets.js';
import type { Labels } from '../schema/fleet.js';
import { shortRevision } from '../reconciler/summarise-status.js';
import { formatLabels } from '../schema/labels.js';
import {
  buildDemoFleet,
  commitFleetChange,
  demoPaths,
  type DemoDevice,
  type DemoFleet,
  type DemoPaths,
} from './build-demo-fleet.js';
import { currentSlot } from './packet-paths.js';
import { serveArtifacts } from './serve-artifacts.js';

/** Two devices of fleet-example with different labels whose desired sets resolve cleanly. */
export const demoDeviceIds = ['pi-0042', 'nuc-0001'] as const;

/** The release the demo publishes between the passes: spec eu-sites asks for vpn `~4.1`. */
export const demoUpgrade = { packet: 'vpn', from: '4.1.0', to: '4.1.1' } as const;

const binRun = join(packageRoot(), 'bin', 'run.js');

/** How `diff`, `status` and `history` print their results: the CLI passes its own presenters in. */
export interface DemoPresenters {
  diff: (diff: FleetDiff) => string;
  status: (states: DeviceStates) => string;
  history: (history: DeviceHistory) => string;
}

export interface DemoOptions {
  /** Keep the demo's folder (repository, artifacts, device roots) instead of removing it. */
  keep: boolean;
  /** Receives the demo's narration, one line at a time. */
  log: (line: string) => void;
  present: DemoPresenters;
}

export interface DemoPass {
  device: string;
  /** 1: first install; 2: after the release. */
  pass: 1 | 2;
  /** What ran, as a user would type it (`gitfleet agent run ...`). */
  command: string;
  exitCode: number | null;
  /** `agent run --once` exits 0 only when the device converged. */
  converged: boolean;
  /** The pass's report as the command prints it. */
  output: string;
  /** The agent's log (stderr). */
  log: string;
  /** After the pass: each installed packet's slot (the target of `<root>/<packet>/current`). */
  slots: Record<string, string>;
}

export interface DemoResult {
  /** The demo's folder; removed after the run unless `keep`. */
  dir: string;
  kept: boolean;
  /** The bare fleet repository holding the source commits and the devices' state refs. */
  repository: string;
  /** The first commit (the example fleet) and the release on top of it. */
  revisions: { first: string; second: string };
  upgrade: typeof demoUpgrade;
  devices: { id: string; labels: Labels; config: string; root: string }[];
  passes: DemoPass[];
  /** Packets whose current slot changed between the first and the second pass. */
  upgraded: { device: string; packet: string; from: string; to: string }[];
  /** What `gitfleet status`, `diff FIRST SECOND` and `history DEVICE` print at the end. */
  status: string;
  diff: string;
  history: { device: string; text: string };
  /** Every pass converged and the release upgraded the packet on every device. */
  ok: boolean;
}

/** The narration: headings, commands, indented output; `$DEMO` stands for the demo's folder. */
class Narrator {
  constructor(
    private readonly log: (line: string) => void,
    private readonly dir: string,
  ) {}

  short(text: string): string {
    return text.split(this.dir).join('$DEMO');
  }

  heading(text: string): void {
    this.log('');
    this.log(`==> ${text}`);
  }

  say(text: string): void {
    for (const line of this.short(text).split('\n')) this.log(line);
  }

  command(argv: readonly string[]): void {
    this.log(`$ ${this.short(['gitfleet', ...argv].join(' '))}`);
  }

  output(text: string): void {
    for (const line of this.short(text.trimEnd()).split('\n')) this.log(`    ${line}`.trimEnd());
  }
}

/** `git http-backend` and a static file server run until the demo ends; devices run as child processes. */
async function withServers<T>(
  paths: DemoPaths,
  run: (git: LoopbackServer, artifacts: LoopbackServer) => Promise<T>,
): Promise<T> {
  await mkdir(paths.gitRoot, { recursive: true });
  await mkdir(paths.artifacts, { recursive: true });
  const git = await serveGitHttp(paths.gitRoot);
  try {
    const artifacts = await serveArtifacts(paths.artifacts);
    try {
      return await run(git, artifacts);
    } finally {
      await artifacts.close();
    }
  } finally {
    await git.close();
  }
}

/** Runs the CLI as a child process (never blocking this process: it serves the device's requests). */
function runCli(
  argv: readonly string[],
): Promise<{ exitCode: number | null; stdout: string; stderr: string }> {
  // Nothing of the caller's gitfleet settings (credentials, crash points) reaches the demo's devices.
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith('GITFLEET_')),
  );
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [binRun, ...argv], {
      env: { ...env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.once('error', reject);
    child.once('close', (exitCode) =>
      resolve({
        exitCode,
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
      }),
    );
  });
}

/** Each installed packet's current slot under a device's root. */
async function readSlots(root: string): Promise<Record<string, string>> {
  const slots: Record<string, string> = {};
  for (const name of (await readdir(root).catch(() => [])).sort()) {
    const slot = await currentSlot(root, name).catch(() => undefined);
    if (slot !== undefined) slots[name] = slot;
  }
  return slots;
}

/** The agent's JSON log lines as `level message`, for when a pass fails. */
function readableLog(stderr: string): string {
  return stderr
    .trimEnd()
    .split('\n')
    .map((line) => {
      try {
        const entry = JSON.parse(line) as { level?: string; msg?: string };
        return `${entry.level ?? ''} ${entry.msg ?? line}`.trim();
      } catch {
        return line;
      }
    })
    .join('\n');
}

/** What a pass left under the device's root: every `current` link, or after an upgrade what moved. */
function describeSlots(
  root: string,
  slots: Record<string, string>,
  before: Record<string, string> | undefined,
) {
  const lines = Object.entries(slots).flatMap(([name, slot]) => {
    const was = before?.[name];
    if (before !== undefined && was === slot) return [];
    return [`    ${name}/current → slots/${slot}${was === undefined ? '' : ` (was slots/${was})`}`];
  });
  if (lines.length === 0) return `  nothing changed in ${root}`;
  return [`  ${before === undefined ? 'installed' : 'changed'} in ${root}:`, ...lines].join('\n');
}

async function runDevicePass(
  device: DemoDevice,
  pass: 1 | 2,
  before: Record<string, string> | undefined,
  narrator: Narrator,
): Promise<DemoPass> {
  const argv = ['agent', 'run', '--config', device.config, '--once'];
  narrator.command(argv);
  const { exitCode, stdout, stderr } = await runCli(argv);
  narrator.output(stdout);
  if (exitCode !== 0) {
    narrator.say(`  (exit code ${exitCode}; the agent's log:)`);
    narrator.output(readableLog(stderr).split('\n').slice(-15).join('\n'));
  }
  const slots = await readSlots(device.root);
  narrator.say(describeSlots(device.root, slots, before));
  return {
    device: device.id,
    pass,
    command: `gitfleet ${argv.join(' ')}`,
    exitCode,
    converged: exitCode === 0,
    output: stdout,
    log: stderr,
    slots,
  };
}

/** The release between the passes: a vpn 4.1.1 packet variant that spec eu-sites (`~4.1`) picks. */
async function releaseUpgrade(fleetDir: string): Promise<void> {
  const { packet, to } = demoUpgrade;
  await appendFile(
    join(fleetDir, 'packets', `${packet}.yaml`),
    `---
# Released by the demo: fixes reconnects after a link flap.
kind: Packet
name: ${packet}
labels: { version: ${to} }
artifact:
  url: ${packet}/${to}/${packet}.tar.gz
  sha256: ${'0'.repeat(64)} # packed by the demo
  size: 1
hooks:
  install: ./install.sh
  uninstall: ./uninstall.sh
  check: ./check.sh
`,
  );
}

function describeDevice(device: DemoDevice): string {
  return `${device.id} ${formatLabels(device.labels)}`;
}

async function publish(dir: string, git: LoopbackServer, artifacts: LoopbackServer, narrator: Narrator) {
  narrator.heading('1. Publish fleet-example as a signed git repository');
  const fleet = await buildDemoFleet({
    dir,
    gitUrl: git.url,
    artifactsUrl: artifacts.url,
    deviceIds: demoDeviceIds,
    now: new Date(),
  });
  const { paths } = fleet;
  narrator.say(
    [
      `Packed ${fleet.artifacts} artifacts (one per packet variant, from fleet-example/artifacts/) into ${paths.artifacts}`,
      'and wrote their sha256 and size into the packet manifests.',
      `Signed commit ${shortRevision(fleet.commits[0] ?? '')} on main of ${paths.repo}`,
      `with a new release key; devices trust it through ${paths.allowedSigners}.`,
      '',
      'Two devices, each with its own key (its public key is in its device record) and agent.yaml:',
      ...fleet.devices.map((d) => `  ${describeDevice(d)}: ${d.config}`),
      '',
      `git (stock git http-backend): ${fleet.remote}`,
      `artifacts (fleet.yaml mirror): ${fleet.mirror}`,
    ].join('\n'),
  );
  return fleet;
}

async function passes(
  fleet: DemoFleet,
  pass: 1 | 2,
  earlier: readonly DemoPass[],
  narrator: Narrator,
): Promise<DemoPass[]> {
  const results: DemoPass[] = [];
  for (const device of fleet.devices) {
    const before = earlier.find((p) => p.device === device.id)?.slots;
    results.push(await runDevicePass(device, pass, before, narrator));
  }
  return results;
}

async function report(fleet: DemoFleet, narrator: Narrator, present: DemoPresenters) {
  const { paths } = fleet;
  const [first = '', second = ''] = fleet.commits;
  const [device] = fleet.devices;
  narrator.heading('4. What the release changes, for every device with a record (a pull request comment)');
  narrator.say('Look at: which devices change, how, and which spec makes them.');
  narrator.command(['diff', shortRevision(first), shortRevision(second), '--dir', paths.repo]);
  const diff = present.diff((await diffRevisions(paths.repo, first, second)).diff);
  narrator.output(diff);

  narrator.heading("5. Every device's recorded state (the state refs the devices pushed)");
  narrator.say(
    'Look at: both devices Ready at the release, 0 behind, SIGNATURE verified against the key in their\n' +
      'device record; the devices without an agent in this demo never reported.',
  );
  narrator.command(['status', '--dir', paths.repo]);
  const status = present.status(await readDeviceStates(paths.repo, { rev: 'main' }));
  narrator.output(status);

  const id = device?.id ?? demoDeviceIds[0];
  narrator.heading(`6. ${id}'s history: its state commits joined with the source commits`);
  narrator.say('Look at: one state commit per pass that changed something, each naming the source commit it');
  narrator.say('converged to, who wrote that commit and which allowed signer signed it.');
  narrator.command(['history', id, '--dir', paths.repo, '--allowed-signers', paths.allowedSigners]);
  const history = present.history(
    await readDeviceHistory(paths.repo, id, { rev: 'main', allowedSigners: paths.allowedSigners }),
  );
  narrator.output(history);
  return { diff, status, history: { device: id, text: history } };
}

function upgradedPackets(before: readonly DemoPass[], after: readonly DemoPass[]): DemoResult['upgraded'] {
  return after.flatMap((pass) => {
    const earlier = before.find((p) => p.device === pass.device)?.slots ?? {};
    return Object.entries(pass.slots).flatMap(([packet, to]) => {
      const from = earlier[packet];
      return from !== undefined && from !== to ? [{ device: pass.device, packet, from, to }] : [];
    });
  });
}

/**
 * `gitfleet demo`: the whole loop on this machine, with stock git and Node only. Builds fleet-example into
 * a signed bare repository in a new temp folder, serves it with `git http-backend` and its artifacts with
 * a static server on 127.0.0.1, runs two devices (`gitfleet agent run --once` as child processes, installing
 * into folders below the temp folder), publishes a vpn release, runs them again (the upgrade), and prints
 * `diff`, `status` and `history`. The servers are stopped and, unless `keep`, the folder removed, also when
 * a step throws.
 */
export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const dir = await mkdtemp(join(tmpdir(), 'gitfleet-demo-'));
  const narrator = new Narrator(options.log, dir);
  options.log(`gitfleet demo: a fleet repository, a git server, an artifact server and two devices, all on`);
  options.log(`this machine. Everything lives in DEMO=${dir}`);
  try {
    const paths = demoPaths(dir);
    return await withServers(paths, async (git, artifacts) => {
      const fleet = await publish(dir, git, artifacts, narrator);

      narrator.heading('2. First pass on each device: sync, verify, plan, install, record');
      narrator.say(
        'Each device fetches main, checks its signature against allowed_signers, resolves its packets from its\n' +
          'labels, installs each into a new slot (install.sh, then check.sh) and pushes a signed status.yaml\n' +
          'to refs/gitfleet/state/<id>.',
      );
      const first = await passes(fleet, 1, [], narrator);

      const { packet, from, to } = demoUpgrade;
      narrator.heading(`3. Release ${packet} ${to}, then a second pass on each device: the upgrade`);
      const second = await commitFleetChange(fleet, {
        message: `Release ${packet} ${to}\n\nSpec eu-sites asks for ${packet} ~4.1: every EU device moves from ${from} to ${to}.`,
        now: new Date(),
        edit: releaseUpgrade,
      });
      narrator.say(
        `Added ${packet} ${to} to packets/${packet}.yaml (spec eu-sites asks for ${packet} ~4.1), packed its artifact,\nsigned commit ${shortRevision(second)} on top of ${shortRevision(fleet.commits[0] ?? '')}.`,
      );
      const again = await passes(fleet, 2, first, narrator);

      const shown = await report(fleet, narrator, options.present);
      const upgraded = upgradedPackets(first, again);
      const everyUpgraded = fleet.devices.every((d) =>
        upgraded.some((u) => u.device === d.id && u.packet === packet),
      );
      const allPasses = [...first, ...again];
      const ok = allPasses.every((p) => p.converged) && everyUpgraded;
      narrator.heading(
        ok ? 'Done: both devices converged, then upgraded' : 'Done, with problems (see above)',
      );
      if (options.keep) {
        options.log(`Kept the demo's folder: export DEMO=${dir}, then look around:`);
        narrator.say(
          [
            `  ls -l ${join(dir, 'devices', fleet.devices[0]?.id ?? '', 'root', packet)}`,
            `  git --git-dir ${paths.repo} log --format='%h %s' main refs/gitfleet/state/${fleet.devices[0]?.id ?? ''}`,
            `  node bin/run.js status --dir ${paths.repo}`,
          ].join('\n'),
        );
      }
      return {
        dir,
        kept: options.keep,
        repository: paths.repo,
        revisions: { first: fleet.commits[0] ?? '', second },
        upgrade: demoUpgrade,
        devices: fleet.devices.map(({ id, labels, config, root }) => ({ id, labels, config, root })),
        passes: allPasses,
        upgraded,
        ...shown,
        ok,
      };
    });
  } finally {
    if (!options.keep) {
      await rm(dir, { recursive: true, force: true });
      options.log(`Removed ${dir} (gitfleet demo --keep keeps it).`);
    }
  }
}
