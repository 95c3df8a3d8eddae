import { timingSafeEqual } from 'node:crypto';

/** Constant-time comparison of a presented secret with the configured one; an empty configured secret never matches. */
export function secretMatches(presented: string | null | undefined, expected: string): boolean {
  if (!expected || presented === null || presented === undefined) return false;
  const a = Buffer.from(presented);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function bearerOf(header: string | undefined): string | null {
  const m = /^Bearer\s+(.+)$/i.exec(header ?? '');
  return m ? m[1].trim() : null;
}
