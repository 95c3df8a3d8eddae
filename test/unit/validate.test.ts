import { it } from 'node:test';
import assert from 'node:assert/strict';
import { TidingsError } from '../../src/errors.js';
import { deeperThan, plainText, queryId, queryOne } from '../../src/http/validate.js';

const nest = (levels: number, open = '[', close = ']') => JSON.parse(open.repeat(levels) + close.repeat(levels)) as unknown;
const codeOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    return e instanceof TidingsError ? e.code : String(e);
  }
  return null;
};

it('deeperThan counts a flat object or array as one level and measures any depth without a stack overflow', () => {
  for (const flat of [1, 'x', null, true]) assert.equal(deeperThan(flat, 1), false);
  assert.equal(deeperThan({}, 1), false);
  assert.equal(deeperThan({ a: {} }, 1), true);
  assert.equal(deeperThan(nest(32), 32), false);
  assert.equal(deeperThan(nest(33), 32), true);
  assert.equal(deeperThan(nest(100_000), 512), true);
  // Wide but shallow is fine; the deep branch is found wherever it is.
  assert.equal(deeperThan({ a: Array.from({ length: 1000 }, () => ({ b: 1 })) }, 3), false);
  assert.equal(deeperThan({ a: [1, 2, { b: [nest(3)] }] }, 5), true);
});

it('queryOne and queryId refuse a parameter given twice', () => {
  assert.equal(queryOne({ key: 'a' }, 'key'), 'a');
  assert.equal(codeOf(() => queryOne({ key: ['a', 'b'] }, 'key')), 'TIDINGS_REPEATED_PARAMETER');
  assert.equal(codeOf(() => queryId({ context: ['1', '2'] }, 'context')), 'TIDINGS_REPEATED_PARAMETER');
  assert.equal(queryId({ context: '7' }, 'context'), 7);
});

it('plainText refuses control characters and lone surrogates, takes any other text', () => {
  assert.equal(plainText('key', 'com.openexchange.websockets.enabled'), 'com.openexchange.websockets.enabled');
  assert.equal(plainText('value', 'Grüße 🙂'), 'Grüße 🙂');
  for (const bad of ['a\u0000', 'a\u0007b', '\u007f', '\u0085', 'x\ud800', '\udc00y']) assert.equal(codeOf(() => plainText('key', bad)), 'TIDINGS_VALIDATION', JSON.stringify(bad));
});
