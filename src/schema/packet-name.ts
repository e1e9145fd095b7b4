/** The names packets may have (DESIGN.md §1), also what makes them safe as one path segment. */
export const packetNamePattern = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/**
 * Whether an artifact URL names a scheme (`https:`, `file:`, …) rather than a path relative to the
 * artifact mirrors.
 */
export function hasUrlScheme(url: string): boolean {
  return /^[a-z][a-z0-9+.-]*:/i.test(url);
}
