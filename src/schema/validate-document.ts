import type { ErrorObject } from 'ajv';
import * as compiled from './compiled-validators.js';
import fleetSchema from './json/fleet.schema.json' with { type: 'json' };
import { escapePointerToken, type YamlDocument } from './parse-yaml-documents.js';
import type { Problem } from './problem.js';

/**
 * Top-level fields of fleet.yaml this version knows. Others are ignored with a warning, so a fleet.yaml
 * written for a newer gitfleet (trust or freshness settings, say) still plans: every field has a safe default.
 */
export const fleetFields: ReadonlySet<string> = new Set(Object.keys(fleetSchema.properties));

export type DocumentKind = 'Fleet' | 'Packet' | 'Spec' | 'Device' | 'Installed' | 'Status' | 'Agent';

function describe(error: ErrorObject): { pointer: string; message: string } {
  const field = error.instancePath.split('/').pop() ?? '';
  const schema = error.parentSchema as { description?: string } | undefined;
  switch (error.keyword) {
    case 'additionalProperties': {
      const key = String((error.params as { additionalProperty: string }).additionalProperty);
      return {
        pointer: `${error.instancePath}/${escapePointerToken(key)}`,
        message: `unknown field '${key}'`,
      };
    }
    case 'required': {
      const key = String((error.params as { missingProperty: string }).missingProperty);
      return { pointer: error.instancePath, message: `missing required field '${key}'` };
    }
    case 'propertyNames':
      return {
        pointer: `${error.instancePath}/${escapePointerToken(String((error.params as { propertyName: string }).propertyName))}`,
        message: `label key '${String((error.params as { propertyName: string }).propertyName)}' is not allowed: keys are 1-253 characters without spaces or '='`,
      };
    case 'pattern':
      return {
        pointer: error.instancePath,
        message: `'${String(error.data)}' is not a valid ${field || 'value'}${schema?.description ? ` (${schema.description})` : ''}`,
      };
    case 'type':
      return {
        pointer: error.instancePath,
        message: `${field || 'document'} must be ${String((error.params as { type: string }).type)}${typeof error.data === 'object' && error.data !== null ? `, not a ${Array.isArray(error.data) ? 'list' : 'map'}` : ''}`,
      };
    case 'const':
    case 'enum':
      return {
        pointer: error.instancePath,
        message: `${field || 'value'} ${error.message ?? 'is not allowed'}`,
      };
    default:
      return {
        pointer: error.instancePath,
        message: `${field || 'document'} ${error.message ?? 'is invalid'}`,
      };
  }
}

/**
 * Checks one parsed document against the JSON Schema of its kind, coercing numeric and boolean fields
 * in place. Returns `invalid_manifest` problems located at the offending key.
 */
export function validateDocument(kind: DocumentKind, document: YamlDocument): Problem[] {
  // Compiled ahead of time (bin/compile-schemas.js): coerceTypes turns the source text of numeric and
  // boolean fields (`priority: 10`) into numbers and booleans; everything else stays the string written.
  const validate = compiled[kind];
  if (validate(document.value)) return [];
  const seen = new Set<string>();
  const problems: Problem[] = [];
  for (const error of validate.errors ?? []) {
    // oneOf failures repeat the branch errors; report each branch error and skip the summary line.
    if (error.keyword === 'oneOf' || error.keyword === 'if') continue;
    // A bad key fails its pattern inside propertyNames too: report it once, at the key.
    if (error.schemaPath.includes('/propertyNames/')) continue;
    const { pointer, message } = describe(error);
    const key = `${pointer}\u0000${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    problems.push({
      severity: 'error',
      code: 'invalid_manifest',
      message,
      location: document.locate(pointer),
    });
  }
  return problems;
}
