import { TidingsError } from '../errors.js';

/** Small field checks whose messages name the field and what it must be. */
export type Body = Record<string, unknown>;

export function objectBody(body: unknown): Body {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new TidingsError('TIDINGS_VALIDATION', 'The body must be a JSON object');
  return body as Body;
}

export function str(b: Body, field: string, opts: { optional?: boolean; max?: number } = {}): string | null {
  const v = b[field];
  if (v === undefined || v === null) {
    if (opts.optional) return null;
    throw new TidingsError('TIDINGS_VALIDATION', `'${field}' is required`);
  }
  if (typeof v !== 'string' || v === '') throw new TidingsError('TIDINGS_VALIDATION', `'${field}' must be a non-empty string`);
  if (opts.max !== undefined && v.length > opts.max) throw new TidingsError('TIDINGS_VALIDATION', `'${field}' must be at most ${opts.max} characters`);
  return v;
}

export function reqStr(b: Body, field: string, max = 1024): string {
  return str(b, field, { max }) as string;
}

export function id(b: Body, field: string): number {
  const v = b[field];
  if (v === undefined || v === null) throw new TidingsError('TIDINGS_VALIDATION', `'${field}' is required`);
  const n = typeof v === 'string' && /^\d{1,10}$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw new TidingsError('TIDINGS_VALIDATION', `'${field}' must be a non-negative integer`);
  return n;
}

/** A parsed query string: a key given twice arrives as an array. */
export type Query = Record<string, string | string[] | undefined>;

/** A query parameter given at most once; `?key=a&key=b` is 400, never a guess at which one was meant. */
export function queryOne(q: Query, field: string): string | undefined {
  const v = q[field];
  if (Array.isArray(v)) throw repeated(field, v.length);
  return v;
}

/** The same for a query read with URLSearchParams (the socket endpoints); null when not given. */
export function searchOne(q: URLSearchParams, field: string): string | null {
  const err = repeatedIn(q, [field]);
  if (err) throw err;
  return q.get(field);
}

/** The refusal for the first of `fields` that `q` gives more than once, or null. */
export function repeatedIn(q: URLSearchParams, fields: readonly string[]): TidingsError | null {
  for (const field of fields) {
    const times = q.getAll(field).length;
    if (times > 1) return repeated(field, times);
  }
  return null;
}

function repeated(field: string, times: number): TidingsError {
  return new TidingsError('TIDINGS_REPEATED_PARAMETER', `query parameter '${field}' is given ${times} times; give it once`, { parameter: field });
}

export function queryId(q: Query, field: string, optional = false): number | null {
  const v = queryOne(q, field);
  if (v === undefined || v === '') {
    if (optional) return null;
    throw new TidingsError('TIDINGS_VALIDATION', `query parameter '${field}' is required`);
  }
  if (!/^\d{1,10}$/.test(v)) throw new TidingsError('TIDINGS_VALIDATION', `query parameter '${field}' must be a non-negative integer`);
  return Number(v);
}

/**
 * True when `value` nests objects and arrays more than `max` levels deep (a flat object or array is
 * one level). It stops at the first branch too deep, so its recursion is never deeper than `max`
 * (the schema caps tidings.push.maxDepth at 512) whatever the input; and it never looks at a
 * primitive twice. About 4 % of what serializing a typical event costs, far less than a separate
 * walk with an explicit stack.
 */
export function deeperThan(value: unknown, max: number): boolean {
  return value !== null && typeof value === 'object' && levelsLeftRunOut(value, max);
}

function levelsLeftRunOut(node: object, left: number): boolean {
  if (left === 0) return true;
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) {
      const child: unknown = node[i];
      if (child !== null && typeof child === 'object' && levelsLeftRunOut(child, left - 1)) return true;
    }
    return false;
  }
  for (const k in node) {
    const child = (node as Record<string, unknown>)[k];
    if (child !== null && typeof child === 'object' && levelsLeftRunOut(child, left - 1)) return true;
  }
  return false;
}

// C0 and C1 controls and DEL; a lone surrogate cannot be encoded as UTF-8 and so never survives a round trip.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Refuses text an operator could not type back: control characters and lone surrogates. */
export function plainText(field: string, text: string): string {
  const c = CONTROL.exec(text);
  if (c) throw new TidingsError('TIDINGS_VALIDATION', `'${field}' contains the control character U+${c[0].charCodeAt(0).toString(16).padStart(4, '0').toUpperCase()}`);
  if (LONE_SURROGATE.test(text)) throw new TidingsError('TIDINGS_VALIDATION', `'${field}' contains a lone UTF-16 surrogate, which is not text`);
  return text;
}
