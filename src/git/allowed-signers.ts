import { GitfleetError } from '../schema/gitfleet-error.js';
import { readBounded } from './read-bounded.js';
import { isSshKeyType, parseSshPublicKeyBlob, type SshPublicKey } from './ssh-key.js';
import { decodeBase64, quoteUntrusted } from './ssh-wire.js';

/**
 * git's `gpg.ssh.allowedSignersFile`, in the ALLOWED SIGNERS format of ssh-keygen(1):
 * `principals [options] keytype base64-key [comment]`. Pure: the caller reads the file.
 */

export interface AllowedSigner {
  /** 1-based line in the file. */
  line: number;
  /** The principal patterns as written (`*` and `?` wildcards), quotes removed. */
  principals: string[];
  /** The `namespaces="..."` pattern list; undefined when any namespace is allowed. */
  namespaces: string[] | undefined;
  /** Inclusive bounds of `valid-after` / `valid-before`; undefined when unbounded. */
  validAfter: Date | undefined;
  validBefore: Date | undefined;
  keyType: string;
  /** The key's wire encoding, compared byte for byte with a signature's key. */
  blob: Uint8Array;
  /** Why gitfleet ignores this entry (`cert-authority`, a key type it cannot verify); else undefined. */
  unsupported: string | undefined;
}

/** Key types OpenSSH knows but gitfleet cannot verify: lines with them are kept, marked unsupported. */
const otherOpenSshKeyTypes = [
  'ssh-dss',
  'sk-ssh-ed25519@openssh.com',
  'sk-ecdsa-sha2-nistp256@openssh.com',
  'ssh-xmss@openssh.com',
];

/**
 * Parses an allowed signers file; comment (`#`) and blank lines are skipped.
 * @throws GitfleetError `untrusted_revision` "`path`:`line`: reason" at the first malformed line: a trust
 *   file that is half understood must not be half applied.
 */
export function parseAllowedSigners(text: string, path: string): AllowedSigner[] {
  const signers: AllowedSigner[] = [];
  text.split('\n').forEach((raw, index) => {
    const content = raw.replace(/\r$/, '').trim();
    if (content === '' || content.startsWith('#')) return;
    try {
      signers.push({ line: index + 1, ...parseLine(content) });
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new GitfleetError('untrusted_revision', `${path}:${index + 1}: ${reason}`, { cause: error });
    }
  });
  return signers;
}

/**
 * The first usable entry for `publicKey` that allows `namespace` and, when `at` is given, whose validity
 * window contains it (to the second, as OpenSSH compares). It does not check principals: like
 * `ssh-keygen -Y find-principals`, it tells who the key belongs to.
 */
export function findSigner(
  signers: readonly AllowedSigner[],
  publicKey: SshPublicKey,
  options: { namespace: string; at?: Date },
): AllowedSigner | undefined {
  const { namespace, at } = options;
  return signers.find(
    (signer) =>
      signer.unsupported === undefined &&
      Buffer.compare(signer.blob, publicKey.blob) === 0 &&
      (signer.namespaces === undefined || matchPatternList(namespace, signer.namespaces)) &&
      (at === undefined || isValidAt(signer, at)),
  );
}

function isValidAt(signer: AllowedSigner, at: Date): boolean {
  const seconds = Math.floor(at.getTime() / 1000) * 1000;
  return (
    (signer.validAfter === undefined || seconds >= signer.validAfter.getTime()) &&
    (signer.validBefore === undefined || seconds <= signer.validBefore.getTime())
  );
}

function parseLine(content: string): Omit<AllowedSigner, 'line'> {
  const tokens = new Tokens(content);
  const principalsField = tokens.next() ?? '';
  const unquoted = /^"([^"]*)"$/.exec(principalsField)?.[1] ?? principalsField;
  if (unquoted.includes('"')) fail('quotes must enclose the whole principals field');
  const principals = list(unquoted, 'principal');

  let keyType = tokens.next();
  let optionsField: string | undefined;
  if (keyType !== undefined && !isKeyTypeName(keyType)) {
    optionsField = keyType;
    keyType = tokens.next();
  }
  const options = parseOptions(optionsField);
  const base64 = tokens.next();
  if (keyType === undefined || base64 === undefined) fail('expected principals, [options,] key type and key');
  if (!isKeyTypeName(keyType)) fail(`unknown key type ${quoteUntrusted(keyType)}`);
  const blob = decodeBase64(base64, 'public key');
  let unsupported: string | undefined;
  if (!isSshKeyType(keyType)) {
    unsupported = `key type ${keyType} is not supported by gitfleet`;
  } else if (parseSshPublicKeyBlob(blob).type !== keyType) {
    fail(`key type ${keyType} does not match the key`);
  }
  if (options.ca) unsupported = 'cert-authority: gitfleet does not verify SSH certificates';
  const { namespaces, validAfter, validBefore } = options;
  return { principals, namespaces, validAfter, validBefore, keyType, blob, unsupported };
}

interface Options {
  namespaces: string[] | undefined;
  validAfter: Date | undefined;
  validBefore: Date | undefined;
  ca: boolean;
}

/** `opt[,opt...]` with case-insensitive names; values must be double-quoted, as in OpenSSH. */
function parseOptions(field: string | undefined): Options {
  const options: Options = {
    namespaces: undefined,
    validAfter: undefined,
    validBefore: undefined,
    ca: false,
  };
  if (field === undefined) return options;
  const seen = new Set<string>();
  for (const option of splitOutsideQuotes(field)) {
    const [, rawName = '', value] = /^([^="]*)(?:="([^"]*)")?$/.exec(option) ?? [];
    const name = rawName.toLowerCase();
    if (seen.has(name)) fail(`option ${name} given twice`);
    seen.add(name);
    if (name === 'cert-authority' && value === undefined) options.ca = true;
    else if (name === 'namespaces' && value !== undefined) options.namespaces = list(value, 'namespace');
    else if (name === 'valid-after' && value !== undefined) options.validAfter = parseTimestamp(value);
    else if (name === 'valid-before' && value !== undefined) options.validBefore = parseTimestamp(value);
    else fail(`unsupported or malformed option ${quoteUntrusted(option)}`);
  }
  return options;
}

/** Splits on commas outside double quotes; `Tokens` has already checked the quotes pair up. */
function splitOutsideQuotes(field: string): string[] {
  const parts = [''];
  let quoted = false;
  for (const char of field) {
    if (char === '"') quoted = !quoted;
    if (char === ',' && !quoted) parts.push('');
    else parts[parts.length - 1] += char;
  }
  return parts;
}

/** `YYYYMMDD[Z]` or `YYYYMMDDHHMM[SS][Z]`; like ssh-keygen, local time unless suffixed `Z` (or `UTC`). */
function parseTimestamp(value: string): Date {
  const match = /^(\d{4})(\d\d)(\d\d)(?:(\d\d)(\d\d)(\d\d)?)?(z|utc)?$/i.exec(value);
  if (match === null) fail(`invalid timestamp ${quoteUntrusted(value)}`);
  const fields = match.slice(1, 7).map((part) => Number(part ?? '0'));
  const [year, month, day, hour, minute, second] = fields as [number, number, number, number, number, number];
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  // Date would silently roll 20250230 over to March; a typo in a trust file should be loud instead.
  if (
    year < 1970 ||
    month < 1 ||
    month > 12 ||
    day < 1 ||
    day > daysInMonth ||
    hour > 23 ||
    minute > 59 ||
    second > 59
  ) {
    fail(`invalid timestamp ${quoteUntrusted(value)}`);
  }
  return match[7] === undefined
    ? new Date(year, month - 1, day, hour, minute, second)
    : new Date(Date.UTC(year, month - 1, day, hour, minute, second));
}

/** OpenSSH's match_pattern_list: a matching `!pattern` refuses, else any matching pattern accepts. */
function matchPatternList(value: string, patterns: readonly string[]): boolean {
  let matched = false;
  for (const pattern of patterns) {
    const negated = pattern.startsWith('!');
    if (matchPattern(value, negated ? pattern.slice(1) : pattern)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

/** `*` matches any run, `?` any one character; backtracking only to the last `*` bounds it to O(n·m). */
function matchPattern(value: string, pattern: string): boolean {
  let v = 0;
  let p = 0;
  let starP = -1;
  let starV = 0;
  while (v < value.length) {
    if (p < pattern.length && (pattern[p] === '?' || pattern[p] === value[v])) {
      v++;
      p++;
    } else if (p < pattern.length && pattern[p] === '*') {
      starP = p++;
      starV = v;
    } else if (starP >= 0) {
      p = starP + 1;
      v = ++starV;
    } else {
      return false;
    }
  }
  while (pattern[p] === '*') p++;
  return p === pattern.length;
}

/** Whitespace-separated fields, where double quotes protect whitespace (in principals and options). */
class Tokens {
  private rest: string;
  constructor(content: string) {
    this.rest = content;
  }
  next(): string | undefined {
    this.rest = this.rest.trimStart();
    if (this.rest === '') return undefined;
    const match = /^(?:[^\s"]|"[^"]*")+/.exec(this.rest);
    // A field stops early only at a quote that is never closed.
    if (match === null || /^\S/.test(this.rest.slice(match[0].length))) fail('unterminated quote');
    this.rest = this.rest.slice(match[0].length);
    return match[0];
  }
}

function list(field: string, what: string): string[] {
  const items = field.split(',');
  if (items.some((item) => item === '')) fail(`empty ${what} in ${quoteUntrusted(field)}`);
  return items;
}

function isKeyTypeName(token: string): boolean {
  return (
    isSshKeyType(token) || otherOpenSshKeyTypes.includes(token) || token.endsWith('-cert-v01@openssh.com')
  );
}

/** Fails the current line; `parseAllowedSigners` adds `path:line` and the error code. */
function fail(reason: string): never {
  throw new Error(reason);
}

/**
 * Reads and parses an allowed signers file (bounded like every input). Throws `untrusted_revision` when it
 * cannot be read or has a malformed line: without it, no signature can be trusted.
 */
export async function loadAllowedSigners(path: string): Promise<AllowedSigner[]> {
  const data = await readBounded(path).catch((cause: unknown) => {
    throw new GitfleetError('untrusted_revision', `cannot read the allowed signers file ${path}`, { cause });
  });
  return parseAllowedSigners(Buffer.from(data).toString('utf8'), path);
}
