import { compareStrings } from './compare-strings.js';
import type { ErrorCode } from './gitfleet-error.js';

/** Where in the fleet a problem was found; line and col are 1-based. */
export interface SourceLocation {
  file: string;
  line: number;
  col: number;
}

/** One finding of the parser, the validator or the resolver. */
export interface Problem {
  severity: 'error' | 'warning';
  code: ErrorCode;
  message: string;
  location?: SourceLocation;
}

/** `file:line:col: message`, the form editors and CI logs link to. */
export function locatedMessage(problem: Problem): string {
  const at = problem.location;
  return at ? `${at.file}:${at.line}:${at.col}: ${problem.message}` : problem.message;
}

/** `file:line:col: error <code>: message` or `file:line:col: warning: message`, as compilers print them. */
export function formatProblem(problem: Problem): string {
  const at = problem.location;
  const where = at ? `${at.file}:${at.line}:${at.col}: ` : '';
  const tag = problem.severity === 'warning' ? 'warning' : `error ${problem.code}`;
  return `${where}${tag}: ${problem.message}`;
}

/** Sorts problems by file, line, column and message so output never depends on read order. */
export function compareProblems(a: Problem, b: Problem): number {
  const fa = a.location?.file ?? '';
  const fb = b.location?.file ?? '';
  if (fa !== fb) return compareStrings(fa, fb);
  const d =
    (a.location?.line ?? 0) - (b.location?.line ?? 0) || (a.location?.col ?? 0) - (b.location?.col ?? 0);
  if (d !== 0) return d;
  return compareStrings(a.message, b.message);
}
