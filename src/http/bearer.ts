import { sameSecret } from '../auth/constant-time.js';

/** Constant-time comparison of a presented secret with the configured one; an empty configured secret never matches. */
export function secretMatches(presented: string | null | undefined, expected: string): boolean {
  if (!expected || presented === null || presented === undefined) return false;
  return sameSecret(presented, expected);
}

export function bearerOf(header: string | undefined): string | null {
  const m = /^Bearer\s+(.+)$/i.exec(header ?? '');
  return m ? m[1].trim() : null;
}
