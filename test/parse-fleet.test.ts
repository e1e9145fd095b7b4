import { describe, it, expect } from 'vitest';
import type { Fleet } from '../src/schema/fleet.js';
import { parseFleet, type ParseResult } from '../src/schema/parse-fleet.js';
import type { SourceFile } from '../src/schema/parse-yaml-documents.js';
import type { Problem } from '../src/schema/problem.js';

const SHA = '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08';
const FLEET_FILE: SourceFile = { path: 'fleet.yaml', data: 'kind: Fleet\n' };

/** Parses `fleet.yaml` (`kind: Fleet`) plus the given files. */
function parse(files: Record<string, string>, withFleet = true): ParseResult<Fleet> {
  const list = Object.entries(files).map(([path, data]) => ({ path, data }));
  return parseFleet(withFleet ? [FLEET_FILE, ...list] : list);
}

function ok(result: ParseResult<Fleet>): { value: Fleet; warnings: Problem[] } {
  if (!result.ok) throw new Error(`expected a valid fleet, got ${JSON.stringify(result.errors, null, 2)}`);
  return result;
}

function errorsOf(result: ParseResult<Fleet>): Problem[] {
  if (result.ok) throw new Error('expected errors, the fleet parsed');
  return result.errors;
}

/** The single error of a result, checked for code and location. */
function expectOneError(
  result: ParseResult<Fleet>,
  code: Problem['code'],
  file: string,
  line: number,
  col: number,
): Problem {
  const errors = errorsOf(result);
  expect(errors.map((e) => ({ code: e.code, location: e.location }))).toEqual([
    { code, location: { file, line, col } },
  ]);
  expect(errors[0]!.severity).toBe('error');
  return errors[0]!;
}

/**
 * A packet manifest with fixed line numbers: 1 kind, 2 name, 3 labels, 4 artifact, 5 url, 6 sha256,
 * 7 size, 8+ extra lines.
 */
function packet(
  options: {
    name?: string;
    labels?: string;
    url?: string;
    sha256?: string;
    size?: string;
    extra?: string[];
  } = {},
): string {
  return [
    'kind: Packet',
    `name: ${options.name ?? 'logger'}`,
    `labels: ${options.labels ?? '{ version: 1.0.0, arch: armv7l }'}`,
    'artifact:',
    `  url: ${options.url ?? 'logger/1.0.0/logger-armv7l.tar.gz'}`,
    `  sha256: ${options.sha256 ?? SHA}`,
    `  size: ${options.size ?? '48213'}`,
    ...(options.extra ?? []),
    '',
  ].join('\n');
}

describe('parseFleet: the smallest fleet', () => {
  it('parses `kind: Fleet` with every default filled in', () => {
    const { value, warnings } = ok(parse({}));
    expect(value).toEqual({
      settings: {
        version: 1,
        artifacts: { mirrors: [] },
        guards: { allowEmpty: false },
        trust: { timestamp: false },
        location: { file: 'fleet.yaml', line: 1, col: 1 },
      },
      packets: [],
      specs: [],
      devices: [],
    });
    expect(warnings).toEqual([]);
  });

  it('reports a fleet without fleet.yaml as invalid_manifest at fleet.yaml:1:1', () => {
    const error = expectOneError(parse({}, false), 'invalid_manifest', 'fleet.yaml', 1, 1);
    expect(error.message).toMatch(/fleet\.yaml/);
  });

  it('reports a fleet without fleet.yaml even when other manifests exist', () => {
    expectOneError(parse({ 'packets/logger.yaml': packet() }, false), 'invalid_manifest', 'fleet.yaml', 1, 1);
  });

  it('ignores an unknown fleet.yaml field with a warning at the field (settings of a newer version)', () => {
    const result = parseFleet([
      { path: 'fleet.yaml', data: 'kind: Fleet\nmaintenance: { window: sunday }\n' },
    ]);
    const { value, warnings } = ok(result);
    expect(value.settings.guards.allowEmpty).toBe(false);
    expect(warnings.map((w) => [w.message, w.location?.line, w.location?.col])).toEqual([
      ["unknown field 'maintenance' in fleet.yaml is ignored", 2, 1],
    ]);
  });

  it('still refuses a bad value in a known fleet.yaml field', () => {
    const result = parseFleet([{ path: 'fleet.yaml', data: 'kind: Fleet\nguards: { allowEmpty: maybe }\n' }]);
    expectOneError(result, 'invalid_manifest', 'fleet.yaml', 2, 11);
  });

  it('reports an empty fleet.yaml (no Fleet document) as invalid_manifest at fleet.yaml:1:1', () => {
    const result = parseFleet([{ path: 'fleet.yaml', data: '# nothing here yet\n' }]);
    expectOneError(result, 'invalid_manifest', 'fleet.yaml', 1, 1);
  });

  it('reads the optional settings of fleet.yaml', () => {
    const { value } = ok(
      parseFleet([
        {
          path: 'fleet.yaml',
          data: [
            'kind: Fleet',
            'version: 1',
            'artifacts:',
            '  mirrors: [https://a.example.org/fleet/, http://127.0.0.1:8081/artifacts/]',
            'guards:',
            '  allowEmpty: true',
            'trust:',
            '  timestamp: true',
            '',
          ].join('\n'),
        },
      ]),
    );
    expect(value.settings.version).toBe(1);
    expect(value.settings.artifacts.mirrors).toEqual([
      'https://a.example.org/fleet/',
      'http://127.0.0.1:8081/artifacts/',
    ]);
    expect(value.settings.guards.allowEmpty).toBe(true);
    expect(value.settings.trust.timestamp).toBe(true);
  });

  it('refuses an unknown format version at the version field', () => {
    const result = parseFleet([{ path: 'fleet.yaml', data: 'kind: Fleet\nversion: 2\n' }]);
    expectOneError(result, 'invalid_manifest', 'fleet.yaml', 2, 1);
  });

  it('refuses a second Fleet document in fleet.yaml at the second one', () => {
    const result = parseFleet([{ path: 'fleet.yaml', data: 'kind: Fleet\n---\nkind: Fleet\n' }]);
    const error = expectOneError(result, 'invalid_manifest', 'fleet.yaml', 3, 1);
    expect(error.message).toContain('fleet.yaml:1:1');
  });
});

describe('parseFleet: label values are strings exactly as written', () => {
  const device = [
    'kind: Device', // 1
    'id: pi-0042', // 2
    'labels:', // 3
    '  version: 1.10', // 4
    '  on: yes', // 5
    '  n: 010', // 6
    '  t: true', // 7
    '  e: ""', // 8
    '  q: "1.10"', // 9
    "  s: '1.10'", // 10
    '  k:', // 11
    '  f: 1.0e3 # a comment is not part of the value', // 12
    '  kubernetes.io/arch: arm64', // 13
    '',
  ].join('\n');

  it('keeps every scalar as its source text', () => {
    const { value } = ok(parse({ 'devices/pi-0042.yaml': device }));
    const labels = value.devices[0]!.labels;
    expect({ ...labels }).toEqual({
      version: '1.10',
      on: 'yes',
      n: '010',
      t: 'true',
      e: '',
      q: '1.10',
      s: '1.10',
      k: '',
      f: '1.0e3',
      'kubernetes.io/arch': 'arm64',
    });
    for (const v of Object.values(labels)) expect(typeof v).toBe('string');
  });

  it('treats a key with the empty value as present and a missing key as absent', () => {
    const { value } = ok(parse({ 'devices/pi-0042.yaml': device }));
    const labels = value.devices[0]!.labels;
    expect(Object.hasOwn(labels, 'e')).toBe(true);
    expect(labels.e).toBe('');
    expect(Object.hasOwn(labels, 'k')).toBe(true);
    expect(labels.k).toBe('');
    expect(Object.hasOwn(labels, 'missing')).toBe(false);
  });

  it('keeps label values of packets, spec targets and pinned app labels as strings too', () => {
    const { value } = ok(
      parse({
        'packets/logger.yaml': packet({ labels: '{ version: 1.10.0, arch: armv7l, major: 1 }' }),
        'specs/s.yaml': [
          'kind: Spec',
          'id: s',
          'target: { fleet: 007, beta: no }',
          'apps:',
          '  - name: logger',
          '    labels: { major: 1.0 }',
          '',
        ].join('\n'),
      }),
    );
    expect({ ...value.packets[0]!.labels }).toEqual({ version: '1.10.0', arch: 'armv7l', major: '1' });
    expect({ ...value.specs[0]!.target }).toEqual({ fleet: '007', beta: 'no' });
    expect({ ...value.specs[0]!.apps[0]!.labels }).toEqual({ major: '1.0' });
  });

  it('is case-sensitive in keys and values', () => {
    const { value } = ok(
      parse({ 'devices/d.yaml': 'kind: Device\nid: d\nlabels: { Arch: ARM, arch: arm }\n' }),
    );
    expect({ ...value.devices[0]!.labels }).toEqual({ Arch: 'ARM', arch: 'arm' });
  });

  it('refuses keys that are the same text once quoted (`1` and `"1"`) as duplicates', () => {
    const result = parse({ 'devices/d.yaml': 'kind: Device\nid: d\nlabels: { 1: a, "1": b }\n' });
    expectOneError(result, 'invalid_manifest', 'devices/d.yaml', 3, 17);
  });
});

describe('parseFleet: multi-document files', () => {
  it('reads every document of a file separated by ---', () => {
    const text = [
      packet({ labels: '{ version: 1.0.0, arch: armv7l }' }),
      packet({ labels: '{ version: 1.0.0, arch: amd64 }' }),
      '# a spec in the same file is fine too\nkind: Spec\nid: s\ntarget: { fleet: alpha }\n',
    ].join('---\n');
    const { value } = ok(parse({ 'packets/logger.yaml': text }));
    expect(value.packets.map((p) => p.labels.arch)).toEqual(['amd64', 'armv7l']);
    expect(value.packets.map((p) => p.location)).toEqual([
      { file: 'packets/logger.yaml', line: 9, col: 1 },
      { file: 'packets/logger.yaml', line: 1, col: 1 },
    ]);
    expect(value.specs.map((s) => s.id)).toEqual(['s']);
  });

  it('accepts a leading --- and a closing ...', () => {
    const { value } = ok(parse({ 'packets/logger.yaml': `---\n${packet()}...\n` }));
    expect(value.packets).toHaveLength(1);
  });

  it('skips an empty trailing document', () => {
    const { value } = ok(parse({ 'packets/logger.yaml': `${packet()}---\n` }));
    expect(value.packets).toHaveLength(1);
  });

  it('skips an empty document that holds only a comment', () => {
    const { value } = ok(parse({ 'packets/logger.yaml': `${packet()}---\n# retired: logger 0.9\n` }));
    expect(value.packets).toHaveLength(1);
  });

  it('accepts a manifest file with no document at all', () => {
    const { value } = ok(parse({ 'packets/empty.yaml': '', 'specs/comment.yaml': '# nothing yet\n' }));
    expect(value.packets).toEqual([]);
    expect(value.specs).toEqual([]);
  });
});

describe('parseFleet: document structure', () => {
  it('refuses a duplicate key at the second key', () => {
    const result = parse({ 'packets/logger.yaml': packet({ extra: ['name: other'] }) });
    const error = expectOneError(result, 'invalid_manifest', 'packets/logger.yaml', 8, 1);
    expect(error.message).toMatch(/unique/i);
  });

  it('refuses a duplicate key inside a labels map at the second key', () => {
    const result = parse({ 'packets/logger.yaml': packet({ labels: '{ arch: armv7l, arch: amd64 }' }) });
    expectOneError(result, 'invalid_manifest', 'packets/logger.yaml', 3, 25);
  });

  it('refuses an unknown kind at the kind', () => {
    const result = parse({ 'packets/logger.yaml': 'name: logger\nkind: Packt\n' });
    const error = expectOneError(result, 'invalid_manifest', 'packets/logger.yaml', 2, 1);
    expect(error.message).toContain("'Packt'");
  });

  it('refuses a document without a kind at the start of the document', () => {
    const text = `${packet()}---\nname: logger\nlabels: {}\n`;
    const error = expectOneError(
      parse({ 'packets/logger.yaml': text }),
      'invalid_manifest',
      'packets/logger.yaml',
      9,
      1,
    );
    expect(error.message).toMatch(/no kind/);
  });

  it('refuses a document that is not a map', () => {
    expectOneError(
      parse({ 'specs/list.yaml': '- kind: Spec\n' }),
      'invalid_manifest',
      'specs/list.yaml',
      1,
      1,
    );
    expectOneError(parse({ 'specs/scalar.yaml': 'Spec\n' }), 'invalid_manifest', 'specs/scalar.yaml', 1, 1);
  });

  it('refuses a Fleet document outside fleet.yaml at its kind', () => {
    const result = parse({ 'specs/fleet.yaml': '# settings\nkind: Fleet\n' });
    const error = expectOneError(result, 'invalid_manifest', 'specs/fleet.yaml', 2, 1);
    expect(error.message).toContain('Packet, Spec, Device');
  });

  it('does not call a misplaced Fleet document an unknown kind', () => {
    const result = parse({ 'specs/fleet.yaml': '# settings\nkind: Fleet\n' });
    const error = expectOneError(result, 'invalid_manifest', 'specs/fleet.yaml', 2, 1);
    expect(error.message).not.toMatch(/unknown kind/);
  });

  it('refuses a Packet in fleet.yaml at its kind', () => {
    const result = parseFleet([{ path: 'fleet.yaml', data: `kind: Fleet\n---\n${packet()}` }]);
    const error = expectOneError(result, 'invalid_manifest', 'fleet.yaml', 3, 1);
    expect(error.message).toContain('Fleet');
  });

  it('refuses a kind in the wrong case', () => {
    expectOneError(
      parse({ 'specs/s.yaml': 'kind: spec\nid: s\n' }),
      'invalid_manifest',
      'specs/s.yaml',
      1,
      1,
    );
  });
});

describe('parseFleet: packet names', () => {
  it.each([
    ['Logger', 'upper case'],
    ['-x', 'a leading dash'],
    ['a/b', 'a slash'],
    ['..', 'a parent directory'],
    ['.', 'a dot'],
    ['_x', 'a leading underscore'],
    ['a b', 'a space'],
    ['a'.repeat(65), '65 characters'],
  ])('refuses %j (%s) at the name', (name) => {
    const result = parse({ 'packets/p.yaml': packet({ name: JSON.stringify(name) }) });
    const error = expectOneError(result, 'invalid_manifest', 'packets/p.yaml', 2, 1);
    expect(error.message).toContain('name');
  });

  it.each(['logger', 'a', '0', 'a.b-c_d', 'a'.repeat(64)])('accepts %j', (name) => {
    const { value } = ok(parse({ 'packets/p.yaml': packet({ name }) }));
    expect(value.packets[0]!.name).toBe(name);
  });

  it('refuses a bad app name in a spec at that name', () => {
    const spec = ['kind: Spec', 'id: s', 'target: { a: b }', 'apps:', '  - name: ../etc', ''].join('\n');
    expectOneError(parse({ 'specs/s.yaml': spec }), 'invalid_manifest', 'specs/s.yaml', 5, 5);
  });
});

describe('parseFleet: labels must be string maps', () => {
  it('refuses a map as a label value at that label', () => {
    const result = parse({ 'packets/p.yaml': packet({ labels: '{ arch: armv7l, a: { b: c } }' }) });
    const error = expectOneError(result, 'invalid_manifest', 'packets/p.yaml', 3, 25);
    expect(error.message).toMatch(/string/);
    expect(error.message).toMatch(/map/);
  });

  it('refuses a list as a label value at that label', () => {
    const result = parse({ 'packets/p.yaml': packet({ labels: '{ a: [1, 2] }' }) });
    const error = expectOneError(result, 'invalid_manifest', 'packets/p.yaml', 3, 11);
    expect(error.message).toMatch(/list/);
  });

  it('refuses a nested map in block style at the key, also for keys with a slash', () => {
    const device = ['kind: Device', 'id: d', 'labels:', '  kubernetes.io/arch:', '    b: c', ''].join('\n');
    expectOneError(parse({ 'devices/d.yaml': device }), 'invalid_manifest', 'devices/d.yaml', 4, 3);
  });

  it('refuses labels that are a list', () => {
    const result = parse({ 'packets/p.yaml': packet({ labels: '[a, b]' }) });
    expectOneError(result, 'invalid_manifest', 'packets/p.yaml', 3, 1);
  });

  it.each(['"a b"', '"a=b"', '""', '"a\\tb"'])(
    'refuses the label key %s, with an error at that key',
    (key) => {
      const errors = errorsOf(parse({ 'packets/p.yaml': packet({ labels: `{ ${key}: c }` }) }));
      expect(errors.map((e) => e.code)).toContain('invalid_manifest');
      expect(errors.map((e) => e.location)).toContainEqual({ file: 'packets/p.yaml', line: 3, col: 11 });
    },
  );

  it('refuses a label key with a space with exactly one error, at the key', () => {
    expectOneError(
      parse({ 'packets/p.yaml': packet({ labels: '{ "a b": c }' }) }),
      'invalid_manifest',
      'packets/p.yaml',
      3,
      11,
    );
  });
});

describe('parseFleet: schema rules', () => {
  it('refuses an unknown field (typo) at the typo key', () => {
    const text = packet().replace('labels:', 'lables:');
    const error = expectOneError(
      parse({ 'packets/p.yaml': text }),
      'invalid_manifest',
      'packets/p.yaml',
      3,
      1,
    );
    expect(error.message).toContain("'lables'");
  });

  it('refuses an unknown field inside artifact at that key', () => {
    const result = parse({ 'packets/p.yaml': packet({ extra: ['  sha1: abc'] }) });
    expectOneError(result, 'invalid_manifest', 'packets/p.yaml', 8, 3);
  });

  it('refuses a missing artifact.sha256 at artifact', () => {
    const text = packet()
      .split('\n')
      .filter((l) => !l.includes('sha256'))
      .join('\n');
    const error = expectOneError(
      parse({ 'packets/p.yaml': text }),
      'invalid_manifest',
      'packets/p.yaml',
      4,
      1,
    );
    expect(error.message).toContain('sha256');
  });

  it('refuses a missing artifact at the document', () => {
    const text = 'kind: Packet\nname: logger\n';
    const error = expectOneError(
      parse({ 'packets/p.yaml': text }),
      'invalid_manifest',
      'packets/p.yaml',
      1,
      1,
    );
    expect(error.message).toContain('artifact');
  });

  it('accepts an upper-case sha256 and keeps it as lowercase hex', () => {
    const { value } = ok(parse({ 'packets/p.yaml': packet({ sha256: SHA.toUpperCase() }) }));
    expect(value.packets[0]?.artifact.sha256).toBe(SHA.toLowerCase());
  });

  it.each([
    ['too short', 'abc'],
    ['not hex', 'g'.repeat(64)],
    ['too long', `${SHA}0`],
  ])('refuses a bad sha256 (%s) at sha256', (_what, sha256) => {
    const result = parse({ 'packets/p.yaml': packet({ sha256 }) });
    expectOneError(result, 'invalid_manifest', 'packets/p.yaml', 6, 3);
  });

  it.each(['-1', '1.5', 'big', '""'])('refuses size %s at size', (size) => {
    const result = parse({ 'packets/p.yaml': packet({ size }) });
    expectOneError(result, 'invalid_manifest', 'packets/p.yaml', 7, 3);
  });

  it('turns size into a number', () => {
    const { value } = ok(parse({ 'packets/p.yaml': packet({ size: '0' }) }));
    expect(value.packets[0]!.artifact.size).toBe(0);
  });

  it('refuses `priority: high` at priority', () => {
    const spec = ['kind: Spec', 'id: s', 'target: { a: b }', 'priority: high', ''].join('\n');
    const error = expectOneError(parse({ 'specs/s.yaml': spec }), 'invalid_manifest', 'specs/s.yaml', 4, 1);
    expect(error.message).toContain('priority');
  });

  it('refuses `rollout.percent: 150` at percent', () => {
    const spec = ['kind: Spec', 'id: s', 'target: { a: b }', 'rollout: { percent: 150 }', ''].join('\n');
    const error = expectOneError(parse({ 'specs/s.yaml': spec }), 'invalid_manifest', 'specs/s.yaml', 4, 12);
    expect(error.message).toContain('100');
  });

  it('refuses a rollout without percent at rollout', () => {
    const spec = ['kind: Spec', 'id: s', 'target: { a: b }', 'rollout: {}', ''].join('\n');
    expectOneError(parse({ 'specs/s.yaml': spec }), 'invalid_manifest', 'specs/s.yaml', 4, 1);
  });

  it('refuses a version range that is not semver at that version', () => {
    const spec = [
      'kind: Spec',
      'id: s',
      'target: { a: b }',
      'apps:',
      '  - name: logger',
      '    version: "^1"',
      '  - name: runtime',
      '    version: "^^1"',
      '',
    ].join('\n');
    const error = expectOneError(parse({ 'specs/s.yaml': spec }), 'invalid_manifest', 'specs/s.yaml', 8, 5);
    expect(error.message).toContain('^^1');
  });

  it('refuses a requires version range that is not semver at that version', () => {
    const text = packet({ extra: ['requires:', '  - { name: runtime, version: "not a range" }'] });
    expectOneError(parse({ 'packets/p.yaml': text }), 'invalid_manifest', 'packets/p.yaml', 9, 22);
  });

  it.each([
    ['install', '../evil.sh'],
    ['uninstall', '/bin/sh'],
    ['check', 'bin/../../x.sh'],
  ])('refuses hook %s: %s at that hook', (hook, path) => {
    const result = parse({ 'packets/p.yaml': packet({ extra: ['hooks:', `  ${hook}: ${path}`] }) });
    expectOneError(result, 'invalid_manifest', 'packets/p.yaml', 9, 3);
  });

  it('accepts hook paths inside the artifact', () => {
    const extra = ['hooks:', '  install: ./install.sh', '  check: bin/check..sh', '  timeoutSeconds: 30'];
    const { value } = ok(parse({ 'packets/p.yaml': packet({ extra }) }));
    expect(value.packets[0]!.hooks).toEqual({
      install: './install.sh',
      check: 'bin/check..sh',
      timeoutSeconds: 30,
    });
  });

  it.each(['file:///etc/passwd', 'ftp://example.org/x.tar.gz', 'javascript:alert(1)', '"a b.tar.gz"'])(
    'refuses artifact url %s at url',
    (url) => {
      const result = parse({ 'packets/p.yaml': packet({ url }) });
      expectOneError(result, 'invalid_manifest', 'packets/p.yaml', 5, 3);
    },
  );

  it('accepts absolute http(s) and relative artifact urls', () => {
    const { value } = ok(
      parse({
        'packets/a.yaml': packet({ name: 'a', url: 'https://example.org/a.tar.gz' }),
        'packets/b.yaml': packet({ name: 'b', url: 'http://127.0.0.1:8081/b.tar.gz' }),
        'packets/c.yaml': packet({ name: 'c', url: 'c/1.0.0/c.tar.gz' }),
      }),
    );
    expect(value.packets.map((p) => p.artifact.url)).toEqual([
      'https://example.org/a.tar.gz',
      'http://127.0.0.1:8081/b.tar.gz',
      'c/1.0.0/c.tar.gz',
    ]);
  });

  it('refuses a bad mirror URL in fleet.yaml at that mirror', () => {
    const result = parseFleet([
      { path: 'fleet.yaml', data: 'kind: Fleet\nartifacts:\n  mirrors:\n    - file:///srv/mirror\n' },
    ]);
    expectOneError(result, 'invalid_manifest', 'fleet.yaml', 4, 7);
  });

  it('reports every schema error of a document, each at its own field', () => {
    const result = parse({ 'packets/p.yaml': packet({ sha256: 'abc', size: '-1', url: 'file:///x' }) });
    expect(errorsOf(result).map((e) => [e.code, e.location?.line, e.location?.col])).toEqual([
      ['invalid_manifest', 5, 3],
      ['invalid_manifest', 6, 3],
      ['invalid_manifest', 7, 3],
    ]);
  });
});

describe('parseFleet: unique packets and ids', () => {
  it('reports the same name and labelset in two files as duplicate_packet naming the other file:line', () => {
    const result = parse({
      'packets/a.yaml': packet(),
      'packets/b.yaml': `# copy\n${packet()}`,
    });
    const error = expectOneError(result, 'duplicate_packet', 'packets/b.yaml', 2, 1);
    expect(error.message).toContain('packets/a.yaml:1:1');
    expect(error.message).toContain('logger');
  });

  it('reports a duplicate in the same file at the later document', () => {
    const result = parse({ 'packets/a.yaml': `${packet()}---\n${packet()}` });
    const error = expectOneError(result, 'duplicate_packet', 'packets/a.yaml', 9, 1);
    expect(error.message).toContain('packets/a.yaml:1:1');
  });

  it('treats labels in a different key order as the same labelset', () => {
    const result = parse({
      'packets/a.yaml': packet({ labels: '{ version: 1.0.0, arch: armv7l }' }),
      'packets/b.yaml': packet({ labels: '{ arch: armv7l, version: 1.0.0 }' }),
    });
    const error = expectOneError(result, 'duplicate_packet', 'packets/b.yaml', 1, 1);
    expect(error.message).toContain('packets/a.yaml:1:1');
  });

  it('accepts the same name with different labels', () => {
    const { value } = ok(
      parse({
        'packets/a.yaml': packet({ labels: '{ version: 1.0.0, arch: armv7l }' }),
        'packets/b.yaml': packet({ labels: '{ version: 1.0.0, arch: amd64 }' }),
        'packets/c.yaml': packet({ labels: '{ version: 1.0.0 }' }),
        'packets/d.yaml': packet({ labels: '{ version: 1.0.0, arch: "" }' }),
      }),
    );
    expect(value.packets).toHaveLength(4);
  });

  it('accepts different names with the same labels', () => {
    const { value } = ok(
      parse({ 'packets/a.yaml': packet({ name: 'a' }), 'packets/b.yaml': packet({ name: 'b' }) }),
    );
    expect(value.packets.map((p) => p.name)).toEqual(['a', 'b']);
  });

  it('reports a duplicate spec id as invalid_manifest at the second spec', () => {
    const result = parse({
      'specs/a.yaml': 'kind: Spec\nid: base\ntarget: { a: b }\n',
      'specs/b.yaml': '\nkind: Spec\nid: base\ntarget: { c: d }\n',
    });
    const error = expectOneError(result, 'invalid_manifest', 'specs/b.yaml', 2, 1);
    expect(error.message).toContain('specs/a.yaml:1:1');
  });

  it('reports a duplicate device id as invalid_manifest', () => {
    const result = parse({
      'devices/a.yaml': 'kind: Device\nid: a\n',
      'devices/sub/a.yaml': 'kind: Device\nid: a\n',
    });
    expectOneError(result, 'invalid_manifest', 'devices/sub/a.yaml', 1, 1);
  });
});

describe('parseFleet: warnings', () => {
  function warningsOf(files: Record<string, string>) {
    return ok(parse(files)).warnings.map((w) => ({
      severity: w.severity,
      location: w.location,
      message: w.message,
    }));
  }

  it('warns about an empty spec target, at the spec', () => {
    const warnings = warningsOf({
      'specs/a.yaml': 'kind: Spec\nid: all\ntarget: {}\n',
      'specs/b.yaml': 'kind: Spec\nid: none\n',
    });
    expect(warnings).toEqual([
      {
        severity: 'warning',
        location: { file: 'specs/a.yaml', line: 1, col: 1 },
        message: expect.stringMatching(/empty target/) as string,
      },
      {
        severity: 'warning',
        location: { file: 'specs/b.yaml', line: 1, col: 1 },
        message: expect.stringMatching(/empty target/) as string,
      },
    ]);
  });

  it('warns about a non-semver version label on a packet, at that label', () => {
    const warnings = warningsOf({ 'packets/p.yaml': packet({ labels: '{ arch: armv7l, version: 1.10 }' }) });
    expect(warnings).toEqual([
      {
        severity: 'warning',
        location: { file: 'packets/p.yaml', line: 3, col: 25 },
        message: expect.stringContaining("'1.10'") as string,
      },
    ]);
  });

  it('does not warn about a semver version label', () => {
    expect(warningsOf({ 'packets/p.yaml': packet({ labels: '{ version: 1.10.0-rc.1 }' }) })).toEqual([]);
  });

  it('warns about a device record whose file name differs from its id', () => {
    const warnings = warningsOf({
      'devices/pi-0042.yaml': 'kind: Device\nid: pi-0042\n',
      'devices/pi-0043.yml': 'kind: Device\nid: pi-0043\n',
      'devices/eu/pi-0044.yaml': 'kind: Device\nid: pi-0044\n',
      'devices/pi-9999.yaml': 'kind: Device\nid: pi-0045\n',
    });
    expect(warnings).toEqual([
      {
        severity: 'warning',
        location: { file: 'devices/pi-9999.yaml', line: 1, col: 1 },
        message: expect.stringMatching(/pi-0045.*pi-9999/) as string,
      },
    ]);
  });
});

describe('parseFleet: coercion and determinism', () => {
  it('turns `priority: 10` into the number 10 and `allowEmpty: true` into the boolean true', () => {
    const { value } = ok(
      parse({
        'specs/s.yaml': 'kind: Spec\nid: s\ntarget: { a: b }\npriority: 10\nrollout: { percent: 12.5 }\n',
        'specs/t.yaml': 'kind: Spec\nid: t\ntarget: { a: b }\npriority: -3\n',
        'specs/u.yaml': 'kind: Spec\nid: u\ntarget: { a: b }\n',
        'devices/d.yaml': 'kind: Device\nid: d\nallowEmpty: true\n',
        'devices/e.yaml': 'kind: Device\nid: e\n',
      }),
    );
    expect(value.specs.map((s) => s.priority)).toEqual([10, -3, 0]);
    expect(value.specs[0]!.rollout).toEqual({ percent: 12.5 });
    expect(value.devices.map((d) => d.allowEmpty)).toEqual([true, false]);
  });

  it('refuses `allowEmpty: yes` (only true and false are booleans)', () => {
    expectOneError(
      parse({ 'devices/d.yaml': 'kind: Device\nid: d\nallowEmpty: yes\n' }),
      'invalid_manifest',
      'devices/d.yaml',
      3,
      1,
    );
  });

  it('gives the same value whatever the order of the files', () => {
    const files: SourceFile[] = [
      FLEET_FILE,
      {
        path: 'packets/logger.yaml',
        data: `${packet()}---\n${packet({ labels: '{ version: 1.1.0, arch: armv7l }' })}`,
      },
      { path: 'packets/runtime.yaml', data: packet({ name: 'runtime', labels: '{ version: 2.0.0 }' }) },
      { path: 'packets/a/zz.yaml', data: packet({ name: 'zz', labels: '{ version: 1.10 }' }) },
      {
        path: 'specs/base.yaml',
        data: 'kind: Spec\nid: base\ntarget: { fleet: alpha }\napps:\n  - name: logger\n',
      },
      { path: 'specs/all.yaml', data: 'kind: Spec\nid: all\napps:\n  - name: runtime\n' },
      { path: 'devices/pi-1.yaml', data: 'kind: Device\nid: pi-1\nlabels: { fleet: alpha }\n' },
      { path: 'devices/pi-0.yaml', data: 'kind: Device\nid: pi-0\nlabels: { fleet: beta }\n' },
    ];
    const forward = ok(parseFleet(files));
    const reversed = ok(parseFleet([...files].reverse()));
    const shuffled = ok(
      parseFleet([files[3]!, files[0]!, files[6]!, files[1]!, files[7]!, files[2]!, files[5]!, files[4]!]),
    );
    expect(reversed.value).toEqual(forward.value);
    expect(shuffled.value).toEqual(forward.value);
    expect(reversed.warnings).toEqual(forward.warnings);
    expect(forward.value.packets.map((p) => `${p.name}@${p.labels.version}`)).toEqual([
      'logger@1.0.0',
      'logger@1.1.0',
      'runtime@2.0.0',
      'zz@1.10',
    ]);
    expect(forward.value.specs.map((s) => s.id)).toEqual(['all', 'base']);
    expect(forward.value.devices.map((d) => d.id)).toEqual(['pi-0', 'pi-1']);
  });

  it('gives the same errors whatever the order of the files', () => {
    const files: SourceFile[] = [
      FLEET_FILE,
      { path: 'packets/a.yaml', data: packet() },
      { path: 'packets/b.yaml', data: packet() },
      { path: 'specs/x.yaml', data: 'kind: Spec\nid: x\npriority: high\n' },
      { path: 'devices/d.yaml', data: 'kind: Device\nid: d\nlables: {}\n' },
    ];
    const forward = errorsOf(parseFleet(files));
    expect(errorsOf(parseFleet([...files].reverse()))).toEqual(forward);
    expect(forward.map((e) => e.location?.file)).toEqual([
      'devices/d.yaml',
      'packets/b.yaml',
      'specs/x.yaml',
    ]);
  });
});

describe('parseFleet: prototype safety', () => {
  it('refuses a map under a label key __proto__ like any non-string label', () => {
    const result = parse({
      'devices/d.yaml': 'kind: Device\nid: d\nlabels:\n  __proto__: { isAdmin: "true" }\n',
    });
    expectOneError(result, 'invalid_manifest', 'devices/d.yaml', 4, 3);
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
  });

  it('keeps __proto__, constructor and toString as plain string labels', () => {
    const { value } = ok(
      parse({
        'packets/p.yaml': packet({
          labels: '{ __proto__: polluted, constructor: c, toString: t, version: 1.0.0 }',
        }),
        'devices/d.yaml': 'kind: Device\nid: d\nlabels:\n  __proto__: x\n',
      }),
    );
    const labels = value.packets[0]!.labels;
    expect(Object.hasOwn(labels, '__proto__')).toBe(true);
    expect(labels['__proto__']).toBe('polluted');
    expect(labels.constructor).toBe('c');
    expect(Object.keys(labels).sort()).toEqual(['__proto__', 'constructor', 'toString', 'version']);
    expect(Object.getPrototypeOf(labels)).toBeNull();
    expect(Object.hasOwn(value.devices[0]!.labels, '__proto__')).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
  });
});

describe('parseFleet: which files belong to the fleet', () => {
  it('ignores files outside fleet.yaml, packets/, specs/ and devices/, and non-YAML files', () => {
    const garbage = 'kind: [unclosed\n\t: :\n';
    const { value } = ok(
      parse({
        'packets/logger.yaml': packet(),
        'packets/README.md': garbage,
        'packets/logger.yaml.bak': garbage,
        'packets/notes.txt': garbage,
        'specs/s.json': garbage,
        'devices/d.yaml~': garbage,
        'other/x.yaml': garbage,
        '.github/workflows/ci.yaml': garbage,
        'schemas/packet.yaml': garbage,
        'README.yaml': garbage,
        'fleet.yml': garbage,
        'sub/fleet.yaml': garbage,
        'sub/packets/x.yaml': garbage,
        'packetsx/x.yaml': garbage,
      }),
    );
    expect(value.packets).toHaveLength(1);
  });

  it('reads .yml files and nested folders under the manifest folders', () => {
    const { value } = ok(
      parse({
        'packets/a/b/c/logger.yml': packet(),
        'specs/eu/west/s.yaml': 'kind: Spec\nid: s\ntarget: { a: b }\n',
      }),
    );
    expect(value.packets[0]!.location.file).toBe('packets/a/b/c/logger.yml');
    expect(value.specs[0]!.location.file).toBe('specs/eu/west/s.yaml');
  });
});
