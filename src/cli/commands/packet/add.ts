import { Args, Flags } from '@oclif/core';
import { addPacket } from '../../../agent/add-packet.js';
import { formatLabels } from '../../../schema/labels.js';
import { GitfleetCommand } from '../../gitfleet-command.js';

export default class PacketAdd extends GitfleetCommand {
  static override summary = 'Pack a directory into a reproducible artifact and add its packet manifest.';
  static override description = `Packs SRC_DIR into a reproducible .tar.gz, the same bytes for the same content (sorted entries, no times or owners, modes 0644/0755 by the owner's executable bit, a fixed gzip header), stores it by content as <artifacts>/<name>/<sha256>.tar.gz and writes packets/<name>/<version or sha256 prefix>.yaml with its url, sha256 and size. Upload the artifacts directory to your artifact mirrors and commit the manifest.

Refuses (invalid_manifest) a bad name or label, hooks that are not regular files inside SRC_DIR, symlinks that leave SRC_DIR, devices, fifos and sockets, and a --dir without fleet.yaml. A packet of the same name and labels with another artifact, hooks or requires is refused (duplicate_packet) unless --force is given; adding the very same packet again changes nothing.`;
  static override examples = [
    '<%= config.bin %> packet add build/logger --name logger --label version=1.3.0 --label arch=arm64 --install install.sh --check check.sh --dir .',
    '<%= config.bin %> packet add out/ --name sensor-agent --label version=1.0.0 --requires runtime@^2 --timeout 120 --dir fleet --artifacts /srv/artifacts --json',
  ];
  static override args = {
    src_dir: Args.string({
      description: 'Directory to pack (its contents become the artifact root).',
      required: true,
    }),
  };
  static override flags = {
    name: Flags.string({ summary: 'Packet name: [a-z0-9][a-z0-9._-]{0,63}.', required: true }),
    label: Flags.string({
      summary: 'A packet label k=v (repeatable; k= gives k the empty value).',
      multiple: true,
      default: [],
    }),
    install: Flags.string({ summary: 'Install hook: a file inside SRC_DIR, e.g. install.sh.' }),
    uninstall: Flags.string({ summary: 'Uninstall hook: a file inside SRC_DIR.' }),
    check: Flags.string({ summary: 'Health check hook, run after install: a file inside SRC_DIR.' }),
    timeout: Flags.integer({ summary: 'Seconds each hook may run.', min: 1, max: 86400 }),
    requires: Flags.string({
      summary: 'A packet this one needs on the same device: name or name@range (repeatable).',
      multiple: true,
      default: [],
    }),
    dir: Flags.string({ summary: 'The fleet repository (holds fleet.yaml).', default: '.' }),
    artifacts: Flags.string({ summary: 'Artifact store directory. [default: <dir>/artifacts]' }),
    force: Flags.boolean({ summary: 'Replace a packet of the same name and labels.', default: false }),
  };

  async run() {
    const { args, flags } = await this.parse(PacketAdd);
    const result = await addPacket({
      srcDir: args.src_dir,
      fleetDir: flags.dir,
      ...(flags.artifacts === undefined ? {} : { artifactsDir: flags.artifacts }),
      name: flags.name,
      labels: flags.label,
      hooks: { install: flags.install, uninstall: flags.uninstall, check: flags.check },
      ...(flags.timeout === undefined ? {} : { timeoutSeconds: flags.timeout }),
      requires: flags.requires,
      force: flags.force,
    });
    if (!this.jsonEnabled()) {
      for (const warning of result.warnings) this.logToStderr(`warning: ${warning}`);
      const { manifest } = result;
      const what = result.unchanged ? 'unchanged' : result.replaced ? 'replaced' : 'added';
      this.log(`${what} packet ${manifest.name} ${formatLabels(manifest.labels)}: ${result.path}`);
      this.log(`  artifact ${result.artifactPath} (${result.size} bytes, ${result.entries} entries)`);
      this.log(`  sha256 ${result.sha256}`);
    }
    return result;
  }
}
