import {
  access,
  copyFile,
  cp,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rename,
  rm,
  writeFile,
} from 'node:fs/promises';
import { join, posix } from 'node:path';
import { packageRoot } from '../git/package-root.js';
import { hasUrlScheme } from '../schema/packet-name.js';
import { parseAllDocuments, parseDocument } from 'yaml';
import { commitDirectory, createBareRepo } from '../git/commit-directory.js';
import { generateSshKey } from '../git/generate-ssh-key.js';
import type { GitRepo } from '../git/git-repo.js';
import { parseSshPrivateKey, type SshPrivateKey } from '../git/ssh-key.js';
import type { CommitIdentity } from '../git/write-signed-commit.js';
import type { Labels, Packet } from '../schema/fleet.js';
import { GitfleetError } from '../schema/gitfleet-error.js';
import { formatLabels } from '../schema/labels.js';
import { parseFleetFile } from '../schema/parse-fleet.js';
import { locatedMessage } from '../schema/problem.js';
import { initAgent } from './init-agent.js';
import { packArtifact } from './pack-artifact.js';

/** The project's example fleet; its `artifacts/<packet name>/` folders are the artifacts' sources. */
export const exampleFleetDir = `${join(packageRoot(), 'fleet-example')}/`;

/** Where everything of a demo lives below its folder. */
export interface DemoPaths {
  /** The fleet's files as committed (a plain folder, not a git working tree). */
  fleet: string;
  /** Served by the git server: `fleet.git` below it. */
  gitRoot: string;
  /** The bare fleet repository. */
  repo: string;
  /** Served by the artifact server: every packet's artifact at its `artifact.url`. */
  artifacts: string;
  /** One folder per device: agent.yaml, its key, allowed_signers, `state/` and `root/`. */
  devices: string;
  /** The release key's allowed_signers file, as devices pin it. */
  allowedSigners: string;
  /** The private key that signs the fleet's commits. */
  releaseKey: string;
}

export function demoPaths(dir: string): DemoPaths {
  return {
    fleet: join(dir, 'fleet'),
    gitRoot: join(dir, 'git'),
    repo: join(dir, 'git', 'fleet.git'),
    artifacts: join(dir, 'artifacts'),
    devices: join(dir, 'devices'),
    allowedSigners: join(dir, 'allowed_signers'),
    releaseKey: join(dir, 'release_ed25519'),
  };
}

export interface DemoDevice {
  id: string;
  /** The labels of its device record (agent.yaml carries the same ones). */
  labels: Labels;
  /** Its agent.yaml. */
  config: string;
  /** Where its packets are installed. */
  root: string;
  publicKey: string;
}

export interface DemoFleet {
  dir: string;
  paths: DemoPaths;
  /** The fleet repository's URL on the git server; the devices' only remote. */
  remote: string;
  /** The URL fleet.yaml names as its only artifact mirror. */
  mirror: string;
  repo: GitRepo;
  key: SshPrivateKey;
  author: CommitIdentity;
  /** Commits on `main`, oldest first. */
  commits: string[];
  devices: DemoDevice[];
  /** The artifacts' sources: a folder per packet name. */
  sources: string;
  /** Artifacts packed for the first commit (one per packet variant). */
  artifacts: number;
}

export interface BuildDemoFleetOptions {
  /** An existing, empty folder. */
  dir: string;
  /** Base URL of a git server serving `paths.gitRoot` (`${gitUrl}/fleet.git` is the repository). */
  gitUrl: string;
  /** Base URL of a static server serving `paths.artifacts`. */
  artifactsUrl: string;
  /** Devices of the example fleet to set up (their records under devices/ get their keys). */
  deviceIds: readonly string[];
  now: Date;
  /** The example fleet to copy; default the project's fleet-example/. */
  example?: string;
}

const releaseAuthor: CommitIdentity = { name: 'Fleet Release', email: 'release@fleet.example' };
const releasePrincipal = 'release@fleet.example';

function invalid(message: string): never {
  throw new GitfleetError('invalid_manifest', message);
}

/** Every `.yaml` / `.yml` file below `dir`, as `/`-separated paths relative to it, sorted. */
async function yamlFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile() && /\.ya?ml$/.test(e.name))
    .map((e) => posix.relative(dir, posix.join(e.parentPath, e.name)))
    .sort();
}

/** The relative artifact URL as a path below the artifact root, or a refusal. */
function artifactPath(packet: Packet): string {
  const url = packet.artifact.url;
  if (hasUrlScheme(url) || url.startsWith('/'))
    invalid(`packet ${packet.name}: the demo serves relative artifact URLs only, not ${url}`);
  const path = posix.normalize(url);
  if (path.split('/').includes('..') || path === '.')
    invalid(`packet ${packet.name}: bad artifact URL ${url}`);
  return path;
}

/**
 * Packs one packet variant: the packet's source folder plus a `PACKET` file naming the variant (so every
 * variant has its own bytes), stored at the artifact root under its `artifact.url`.
 */
async function packVariant(packet: Packet, sources: string, paths: DemoPaths, staging: string) {
  const source = join(sources, packet.name);
  const work = await mkdtemp(join(staging, `${packet.name}-`));
  try {
    const tree = join(work, 'tree');
    await cp(source, tree, { recursive: true }).catch((cause: unknown) => {
      throw new GitfleetError('invalid_manifest', `no artifact source for packet ${packet.name}`, { cause });
    });
    await writeFile(join(tree, 'PACKET'), `${packet.name} ${formatLabels(packet.labels)}\n`);
    const target = join(paths.artifacts, artifactPath(packet));
    await mkdir(join(target, '..'), { recursive: true });
    const packed = await packArtifact(tree, join(work, 'artifact.tar.gz'));
    await rename(join(work, 'artifact.tar.gz'), target);
    return packed;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * Packs the artifact of every packet variant in the fleet folder's `packets/` from `sources`, stores it
 * at the artifact root and rewrites the manifest's `sha256` and `size` (through the YAML document, so
 * comments and layout survive). Packing is reproducible: an unchanged variant gets the same bytes again.
 * Returns how many artifacts were packed.
 */
export async function packDemoArtifacts(paths: DemoPaths, sources: string): Promise<number> {
  const staging = join(paths.artifacts, '..', '.staging');
  await mkdir(staging, { recursive: true });
  let packed = 0;
  try {
    for (const file of await yamlFiles(join(paths.fleet, 'packets'))) {
      const path = join(paths.fleet, 'packets', file);
      const text = await readFile(path, 'utf8');
      const parsed = parseFleetFile({ path: `packets/${file}`, data: text });
      if (parsed.errors.length > 0) invalid(parsed.errors.map(locatedMessage).join('\n'));
      if (parsed.packets.length === 0) continue;
      const documents = parseAllDocuments(text);
      const packetDocuments = documents.filter((d) => d.get('kind') === 'Packet');
      if (packetDocuments.length !== parsed.packets.length) invalid(`packets/${file}: unexpected documents`);
      for (const [index, packet] of parsed.packets.entries()) {
        const { sha256, size } = await packVariant(packet, sources, paths, staging);
        packetDocuments[index]?.setIn(['artifact', 'sha256'], sha256);
        packetDocuments[index]?.setIn(['artifact', 'size'], size);
        packed += 1;
      }
      const updated = documents.map((d) => d.toString({ lineWidth: 0 })).join('');
      if (updated !== text) await writeFile(path, updated);
    }
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  return packed;
}

/** Edits one YAML file of the fleet folder through its document, keeping comments. */
async function editYaml(path: string, edit: (document: ReturnType<typeof parseDocument>) => void) {
  const document = parseDocument(await readFile(path, 'utf8'));
  edit(document);
  await writeFile(path, document.toString({ lineWidth: 0 }));
}

/** The labels of a device record of the fleet folder. */
async function recordLabels(paths: DemoPaths, id: string): Promise<Labels> {
  const file = `devices/${id}.yaml`;
  const data = await readFile(join(paths.fleet, file), 'utf8').catch(() =>
    invalid(`no ${file} in the fleet`),
  );
  const record = parseFleetFile({ path: file, data }).devices.find((d) => d.id === id);
  return record?.labels ?? invalid(`${file} holds no device record for ${id}`);
}

/**
 * Builds a demo fleet in `dir` from the example fleet: copies it (without its artifact sources), packs
 * every packet variant's artifact (`packDemoArtifacts`), points `fleet.yaml` at the artifact server,
 * creates a release key and its allowed_signers file, sets up each device with `initAgent` (its own key,
 * agent.yaml with the record's labels, state and root folders below `dir`) and writes its public key into
 * its device record, then commits all of it as a signed commit on `main` of a new bare repository.
 */
export async function buildDemoFleet(options: BuildDemoFleetOptions): Promise<DemoFleet> {
  const { dir } = options;
  const paths = demoPaths(dir);
  const example = options.example ?? exampleFleetDir;
  const sources = join(example, 'artifacts');
  const remote = `${options.gitUrl}/fleet.git`;
  const mirror = `${options.artifactsUrl}/`;

  await access(join(example, 'fleet.yaml')).catch((cause: unknown) => {
    throw new GitfleetError('invalid_manifest', `no example fleet at ${example}`, {
      cause,
      hint: 'the demo runs in a checkout of the gitfleet repository, which has fleet-example/',
    });
  });
  await cp(example, paths.fleet, { recursive: true, filter: (path) => path !== sources });
  await mkdir(paths.artifacts, { recursive: true });
  const artifacts = await packDemoArtifacts(paths, sources);
  await editYaml(join(paths.fleet, 'fleet.yaml'), (fleet) => {
    fleet.setIn(['artifacts', 'mirrors'], fleet.createNode([mirror]));
  });

  const release = generateSshKey(releasePrincipal);
  await writeFile(paths.releaseKey, release.privateKey, { mode: 0o600 });
  const [keyType, keyBlob] = release.publicKey.split(' ');
  await writeFile(paths.allowedSigners, `${releasePrincipal} namespaces="git" ${keyType} ${keyBlob}\n`);

  const devices: DemoDevice[] = [];
  for (const id of options.deviceIds) {
    const labels = await recordLabels(paths, id);
    const agentDir = join(paths.devices, id);
    const agent = await initAgent({
      dir: agentDir,
      id,
      labels,
      remotes: [remote],
      ref: 'main',
      stateDir: join(agentDir, 'state'),
      rootDir: join(agentDir, 'root'),
      force: false,
    });
    await copyFile(paths.allowedSigners, join(agentDir, 'allowed_signers'));
    await editYaml(join(paths.fleet, 'devices', `${id}.yaml`), (record) => {
      record.set('publicKey', agent.publicKey);
    });
    devices.push({
      id,
      labels,
      config: agent.config,
      root: join(agentDir, 'root'),
      publicKey: agent.publicKey,
    });
  }

  const repo = await createBareRepo(paths.repo);
  const key = parseSshPrivateKey(release.privateKey);
  const commit = await commitDirectory(repo, paths.fleet, {
    message:
      'Publish the example fleet\n\nEvery packet variant has its own artifact; the devices carry their keys.',
    author: releaseAuthor,
    time: Math.floor(options.now.getTime() / 1000),
    key,
    branch: 'main',
  });
  const commits = [commit];
  return {
    dir,
    paths,
    remote,
    mirror,
    repo,
    key,
    author: releaseAuthor,
    commits,
    devices,
    sources,
    artifacts,
  };
}

/**
 * Changes the demo fleet and publishes the change: `edit` changes files of the fleet folder, then the
 * artifacts are packed again (a new packet variant gets its own; unchanged ones keep their bytes) and the
 * folder is committed, signed, on top of the last commit. Returns the new commit id.
 */
export async function commitFleetChange(
  fleet: DemoFleet,
  change: { message: string; now: Date; edit: (fleetDir: string) => Promise<void> },
): Promise<string> {
  await change.edit(fleet.paths.fleet);
  await packDemoArtifacts(fleet.paths, fleet.sources);
  const commit = await commitDirectory(fleet.repo, fleet.paths.fleet, {
    parent: fleet.commits.at(-1),
    message: change.message,
    author: fleet.author,
    time: Math.floor(change.now.getTime() / 1000),
    key: fleet.key,
    branch: 'main',
  });
  fleet.commits.push(commit);
  return commit;
}
