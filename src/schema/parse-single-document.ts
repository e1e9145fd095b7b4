import { parseYamlDocuments, type SourceFile, type YamlDocument } from './parse-yaml-documents.js';
import type { Problem } from './problem.js';
import { validateDocument, type DocumentKind } from './validate-document.js';

/**
 * Parses a file that must hold exactly one document of `kind` (a config or a status file), with the same
 * bounds as manifests. Returns the schema-checked document or every problem, located.
 */
export function parseSingleDocument(
  file: SourceFile,
  kind: DocumentKind,
): { ok: true; doc: YamlDocument } | { ok: false; errors: Problem[] } {
  const { documents, problems } = parseYamlDocuments(file);
  if (problems.length > 0) return { ok: false, errors: problems };
  const [doc, extra] = documents;
  if (!doc || extra) {
    const location = extra ? extra.locate('') : { file: file.path, line: 1, col: 1 };
    const message = doc ? 'one document expected, found more' : 'the file is empty';
    return { ok: false, errors: [{ severity: 'error', code: 'invalid_manifest', message, location }] };
  }
  const errors = validateDocument(kind, doc);
  return errors.length > 0 ? { ok: false, errors } : { ok: true, doc };
}
