/**
 * The error catalogue pinned both ways, as fastify pins its own: every code in src/errors.ts is
 * answered somewhere in src/, every code is in the README's error tables, and the README names no
 * code the catalogue lacks. Generic on purpose: a new code fails this test until it is used and
 * documented.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { backendUnavailable, ERRORS, TidingsError } from '../../src/errors.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CODES = Object.keys(ERRORS);

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Codes in the README's error tables: rows whose first cell is an HTTP status. */
function readmeCodes(): Set<string> {
  const rows = readFileSync(join(ROOT, 'README.md'), 'utf8').split('\n').filter((l) => /^\|\s*\d{3}\s*\|/.test(l));
  return new Set(rows.flatMap((l) => [...l.matchAll(/`(TIDINGS_[A-Z0-9_]+)`/g)].map((m) => m[1])));
}

it('every code of the catalogue is answered somewhere in src/', () => {
  const text = sources(join(ROOT, 'src')).filter((f) => !f.endsWith(join('src', 'errors.ts'))).map((f) => readFileSync(f, 'utf8')).join('\n');
  const unused = CODES.filter((c) => !text.includes(`'${c}'`));
  assert.deepEqual(unused, [], 'codes nothing answers with: use them or retire them');
});

it('every code of the catalogue is in the README\'s error tables, and the tables name no other', () => {
  const documented = readmeCodes();
  assert.deepEqual(CODES.filter((c) => !documented.has(c)), [], 'codes a client can get that the README does not list');
  assert.deepEqual([...documented].filter((c) => !(c in ERRORS)), [], 'codes the README lists that the catalogue does not have');
});

it('every code is TIDINGS_ in capitals with a 4xx or 5xx status and a message', () => {
  for (const [code, e] of Object.entries(ERRORS)) {
    assert.match(code, /^TIDINGS_[A-Z0-9_]+$/);
    assert.ok(e.status >= 400 && e.status < 600, code);
    assert.ok(e.message.length > 0, code);
  }
});

it('headers such as Retry-After go in the answer\'s headers, never into the JSON body', () => {
  const e = backendUnavailable();
  assert.equal(e.headers['Retry-After'], '2');
  assert.deepEqual(e.toBody(), { error: { code: 'TIDINGS_BACKEND_UNAVAILABLE', message: ERRORS.TIDINGS_BACKEND_UNAVAILABLE.message } });
  assert.deepEqual(new TidingsError('TIDINGS_VALIDATION', 'x', { index: 2 }).toBody(), { error: { code: 'TIDINGS_VALIDATION', message: 'x', details: { index: 2 } } });
});
