import {
  isAlias,
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  parseAllDocuments,
  visit,
  type Alias,
  type Document,
  type Node,
} from 'yaml';
import type { Problem, SourceLocation } from './problem.js';

/** A file of the fleet as the shell hands it in: a repository-relative path and its bytes or text. */
export interface SourceFile {
  path: string;
  data: string | Uint8Array;
}

/** One YAML document as plain data, with a way to find where any part of it was written. */
export interface YamlDocument {
  value: unknown;
  /** Location of the value at a JSON pointer (`/apps/0/labels`); falls back to the nearest parent. */
  locate(pointer: string): SourceLocation;
}

/** Bounds that keep hostile files (huge, deep, alias bombs) cheap to refuse. */
export const yamlLimits = {
  maxFileBytes: 4 * 1024 * 1024,
  maxDepth: 64,
  /** Nodes one document may expand to, aliases counted at every use (billion laughs). */
  maxNodes: 100_000,
  maxDocuments: 10_000,
} as const;

/** A problem found while converting a document, at a source offset. */
class DocumentProblem extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
  }
}

/**
 * The offset of the first flow bracket (`[`, `{`) nested deeper than `limit`, or -1. Quoted text and
 * comments are skipped roughly; it only has to catch absurd nesting before the YAML parser recurses on it.
 */
function tooDeepAt(text: string, limit: number): number {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '[' || c === '{') {
      if (++depth > limit) return i;
    } else if (c === ']' || c === '}') depth = Math.max(0, depth - 1);
    else if (c === '"' || (c === "'" && /[\s[{,:]/.test(text[i - 1] ?? ' '))) {
      for (i++; i < text.length && text[i] !== c; i++) if (c === '"' && text[i] === '\\') i++;
    } else if (c === '#' && /\s/.test(text[i - 1] ?? ' ')) {
      while (i < text.length && text[i] !== '\n') i++;
    }
  }
  return -1;
}

export function escapePointerToken(token: string): string {
  return token.replace(/~/g, '~0').replace(/\//g, '~1');
}

function unescapePointerToken(token: string): string {
  return token.replace(/~1/g, '/').replace(/~0/g, '~');
}

/**
 * Parses every document of a YAML file into plain data. Every scalar becomes its source text (`1.10`
 * stays `"1.10"`, `yes` stays `"yes"`); the JSON Schemas coerce the few numeric and boolean fields.
 * Maps have a null prototype. Never throws: malformed, binary, oversized, too deep or alias-bombed input
 * comes back as `invalid_manifest` problems with `file:line:col`.
 */
export function parseYamlDocuments(file: SourceFile): { documents: YamlDocument[]; problems: Problem[] } {
  const at = (line = 1, col = 1): SourceLocation => ({ file: file.path, line, col });
  const fail = (message: string, location = at()) => ({
    documents: [],
    problems: [{ severity: 'error' as const, code: 'invalid_manifest' as const, message, location }],
  });

  // A string's UTF-8 size is at most three bytes a character; count exactly only when that could matter.
  const data = file.data;
  const size =
    typeof data !== 'string'
      ? data.byteLength
      : data.length * 3 <= yamlLimits.maxFileBytes
        ? data.length
        : new TextEncoder().encode(data).byteLength;
  if (size > yamlLimits.maxFileBytes) {
    return fail(
      `file is ${size} bytes, larger than the ${yamlLimits.maxFileBytes} bytes a manifest file may have`,
    );
  }
  let text: string;
  try {
    text =
      typeof file.data === 'string' ? file.data : new TextDecoder('utf-8', { fatal: true }).decode(file.data);
  } catch {
    return fail('file is not UTF-8 text');
  }
  if (text.startsWith('\uFEFF')) text = text.slice(1); // a byte-order mark is not part of the first line
  const nul = text.indexOf('\u0000');
  if (nul >= 0) return fail('file holds a NUL byte: not a YAML text file');

  const lineCounter = new LineCounter();
  const locationOf = (offset: number): SourceLocation => {
    const { line, col } = lineCounter.linePos(offset);
    return at(line, col);
  };
  const deep = tooDeepAt(text, yamlLimits.maxDepth);
  if (deep >= 0) {
    const lines = text.slice(0, deep).split('\n');
    return fail(
      `document is nested deeper than ${yamlLimits.maxDepth} levels`,
      at(lines.length, (lines[lines.length - 1]?.length ?? 0) + 1),
    );
  }
  let docs: Document.Parsed[];
  try {
    // An empty stream is an empty array too.
    docs = [
      ...parseAllDocuments(text, { lineCounter, prettyErrors: false, uniqueKeys: false, merge: false }),
    ];
  } catch (error) {
    // The parser recurses on nesting; a stack overflow is the answer to absurdly deep input.
    return fail(
      error instanceof RangeError ? 'document is nested too deeply' : `cannot parse YAML: ${String(error)}`,
    );
  }
  if (docs.length > yamlLimits.maxDocuments) {
    return fail(`file holds ${docs.length} documents, more than ${yamlLimits.maxDocuments}`);
  }

  const problems: Problem[] = [];
  const documents: YamlDocument[] = [];
  // One budget for the whole file: 10,000 documents just under a per-document limit are a bomb too.
  let nodes = 0;
  for (const doc of docs) {
    const issues = [...doc.errors, ...doc.warnings];
    if (issues.length > 0) {
      for (const issue of issues) {
        const message = issue.message.split('\n')[0] ?? issue.message;
        // The library notices a missing closing quote at the end of the text: point at the opening one.
        const quote = issue.code === 'MISSING_CHAR' ? /closing (["'])quote/.exec(message)?.[1] : undefined;
        const at = quote ? text.lastIndexOf(quote, issue.pos[0] - 1) : -1;
        problems.push({
          severity: 'error',
          code: 'invalid_manifest',
          message,
          location: locationOf(at >= 0 ? at : issue.pos[0]),
        });
      }
      continue;
    }
    // An empty document (a trailing `---`, only comments) has no contents or a null scalar without text.
    const contents = doc.contents;
    if (contents === null || (isScalar(contents) && contents.value === null && !contents.source)) continue;
    // Where each child of a converted map or list was written, by key: memory stays linear in the nodes
    // even for long keys nested deep (a map of full pointers would not).
    const offsets = new WeakMap<object, Map<string, number>>();
    // Each alias refers to the latest anchor of its name before it; find them all in one walk (the
    // library's Alias.resolve walks the whole document for every alias: quadratic).
    const anchors = new Map<Alias, Node>();
    const latest = new Map<string, Node>();
    visit(doc, {
      Alias(_, alias) {
        const target = latest.get(alias.source);
        if (target) anchors.set(alias, target);
      },
      Node(_, node) {
        if (!isAlias(node) && node.anchor) latest.set(node.anchor, node);
      },
    });
    const convert = (node: Node | null, depth: number, offset: number): unknown => {
      if (++nodes > yamlLimits.maxNodes) {
        throw new DocumentProblem(
          `file expands to more than ${yamlLimits.maxNodes} YAML nodes (aliases count at every use)`,
          offset,
        );
      }
      if (depth > yamlLimits.maxDepth) {
        throw new DocumentProblem(`document is nested deeper than ${yamlLimits.maxDepth} levels`, offset);
      }
      if (node === null) return '';
      if (isAlias(node)) {
        const target = anchors.get(node);
        if (target === undefined) throw new DocumentProblem(`unknown alias *${node.source}`, offset);
        return convert(target, depth + 1, node.range?.[0] ?? offset);
      }
      if (isScalar(node)) return node.source ?? String(node.value);
      if (isSeq(node)) {
        const children = new Map<string, number>();
        const list = node.items.map((item, i) => {
          const at = (item as Node | null)?.range?.[0] ?? node.range?.[0] ?? offset;
          children.set(String(i), at);
          return convert(item as Node | null, depth + 1, at);
        });
        offsets.set(list, children);
        return list;
      }
      if (isMap(node)) {
        const out = Object.create(null) as Record<string, unknown>;
        const children = new Map<string, number>();
        offsets.set(out, children);
        for (const pair of node.items) {
          const keyOffset = (isPair(pair) && (pair.key as Node | null)?.range?.[0]) || offset;
          if (!isPair(pair) || !isScalar(pair.key))
            throw new DocumentProblem('map keys must be plain scalars', keyOffset);
          const key = pair.key.source ?? String(pair.key.value);
          // Keys compare as the text they are (`1` and `"1"` are the same key), as label values do.
          if (Object.hasOwn(out, key))
            throw new DocumentProblem(`duplicate key '${key}': map keys must be unique`, keyOffset);
          children.set(key, keyOffset);
          out[key] = convert(pair.value as Node | null, depth + 1, keyOffset);
        }
        return out;
      }
      throw new DocumentProblem('unsupported YAML node', offset);
    };
    const start = contents.range?.[0] ?? 0;
    try {
      const value = convert(contents, 0, start);
      documents.push({
        value,
        locate(pointer) {
          let offset = start;
          let current: unknown = value;
          for (const token of pointer.split('/').slice(1).map(unescapePointerToken)) {
            const children =
              typeof current === 'object' && current !== null ? offsets.get(current) : undefined;
            const at = children?.get(token);
            if (at === undefined) break;
            offset = at;
            current = (current as Record<string, unknown>)[token];
          }
          return locationOf(offset);
        },
      });
    } catch (error) {
      if (!(error instanceof DocumentProblem)) throw error;
      problems.push({
        severity: 'error',
        code: 'invalid_manifest',
        message: error.message,
        location: locationOf(error.offset),
      });
      if (nodes > yamlLimits.maxNodes) break;
    }
  }
  return { documents, problems };
}
