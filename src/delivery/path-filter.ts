import type { PathFilter } from '../domain/types.js';
import { TidingsError } from '../errors.js';

const ALLOWED = /^[A-Za-z0-9_.\-/]+$/;

/** Checks a publish-side path filter (rules in the README) once, where it enters; throws TIDINGS_INVALID_PATH_FILTER naming the rule broken. */
export function validatePathFilter(filter: string | null): PathFilter | null {
  if (filter === null || filter === '*') return filter as PathFilter | null;
  const bad = (why: string) => new TidingsError('TIDINGS_INVALID_PATH_FILTER', `Invalid path filter '${filter}': ${why}`);
  if (filter === '') throw bad('it is empty');
  const base = filter.endsWith('/*') ? filter.slice(0, -2) : filter;
  if (!base.startsWith('/')) throw bad("it must start with '/'");
  if (base.endsWith('/')) throw bad("it must not end with '/'");
  if (base.includes('//')) throw bad("it must not contain '//'");
  if (!ALLOWED.test(base)) throw bad('only A-Z a-z 0-9 _ . - / are allowed');
  return filter as PathFilter;
}

/** Whether a socket with `path` gets an event published with `filter`. */
export function matchesPath(filter: string | null, path: string): boolean {
  if (filter === null) return true;
  if (path === '') return false;
  if (filter === '*') return true;
  if (!filter.endsWith('/*')) return filter === path;
  const base = filter.slice(0, -2);
  return path === base || path.startsWith(base + '/');
}
