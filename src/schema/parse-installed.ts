import type { InstalledPacket } from './fleet.js';
import { makeLabels } from './labels.js';
import type { ParseResult } from './parse-fleet.js';
import { parseYamlDocuments, type SourceFile } from './parse-yaml-documents.js';
import { validateDocument } from './validate-document.js';

/**
 * Parses what a device has installed: a YAML or JSON list of `{name, labels, sha256?, requires?}`, or a
 * status.yaml whose `packets` is such a list. An empty file means nothing is installed.
 */
export function parseInstalled(file: SourceFile): ParseResult<InstalledPacket[]> {
  const { documents, problems } = parseYamlDocuments(file);
  if (problems.length > 0) return { ok: false, errors: problems, warnings: [] };
  const [doc, extra] = documents;
  if (!doc) return { ok: true, value: [], warnings: [] };
  if (extra) {
    const location = extra.locate('');
    return {
      ok: false,
      errors: [{ severity: 'error', code: 'invalid_manifest', message: 'one document expected', location }],
      warnings: [],
    };
  }
  const errors = validateDocument('Installed', doc);
  if (errors.length > 0) return { ok: false, errors, warnings: [] };
  const list = (Array.isArray(doc.value) ? doc.value : (doc.value as { packets: unknown[] }).packets) as {
    name: string;
    labels?: Record<string, string>;
    sha256?: string;
    requires?: string[];
  }[];
  const seen = new Set<string>();
  const value: InstalledPacket[] = [];
  for (const [i, raw] of list.entries()) {
    if (seen.has(raw.name)) {
      const location = doc.locate(Array.isArray(doc.value) ? `/${i}` : `/packets/${i}`);
      return {
        ok: false,
        errors: [
          { severity: 'error', code: 'invalid_manifest', message: `${raw.name} is listed twice`, location },
        ],
        warnings: [],
      };
    }
    seen.add(raw.name);
    value.push({
      name: raw.name,
      labels: makeLabels(Object.entries(raw.labels ?? {})),
      ...(raw.sha256 === undefined ? {} : { sha256: raw.sha256.toLowerCase() }),
      requires: raw.requires ?? [],
    });
  }
  return { ok: true, value, warnings: [] };
}
