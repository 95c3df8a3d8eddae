import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../src/config/config-error.js';
import type { SourcedValue } from '../../src/config/sourced.js';
import type { StoredValue } from '../../src/ports/config-store.js';
import { parseContextSetFile } from '../../src/config/cascade/context-sets.js';
import type { ContextSetBlock } from '../../src/config/cascade/context-sets.js';
import { applyMetaValues, parseMetaFile } from '../../src/config/cascade/meta.js';
import { CascadeResolver, validateCascadeInput } from '../../src/config/cascade/resolver.js';
import type { CascadeInput, Scope } from '../../src/config/cascade/resolver.js';
import { TagExpressionError, compileBits, evaluate, parseTagExpression, tagNamesOf } from '../../src/config/cascade/tag-expression.js';

const ENABLED = 'com.openexchange.websockets.enabled';
const DELAY = 'com.openexchange.websockets.grizzly.remote.delayDuration';

// Compact description of a config tree; `line` is fake but distinct per scope so sources are checkable.
interface Setup {
  server?: Record<string, string>;
  env?: Record<string, string>;
  context?: Record<string, string>;
  user?: Record<string, string>;
  tags?: string[];
  sets?: Record<string, string>;
  meta?: string;
  stored?: StoredValue[];
}

function vals(rec: Record<string, string> | undefined, file: string, line: number): Map<string, SourcedValue> {
  return new Map(Object.entries(rec ?? {}).map(([k, v]) => [k, { value: v, file, line }]));
}

function build(s: Setup): CascadeInput {
  const server = vals(s.server, 'websockets.properties', 1);
  for (const [k, v] of Object.entries(s.env ?? {})) server.set(k, { value: v, file: `env:${k.toUpperCase().replace(/\./g, '_')}`, line: null });
  const meta = s.meta ? parseMetaFile(s.meta, 'meta/m.yml') : [];
  applyMetaValues(server, meta);
  const contextSets: ContextSetBlock[] = [];
  for (const name of Object.keys(s.sets ?? {}).sort()) contextSets.push(...parseContextSetFile(s.sets![name], `contextSets/${name}`));
  return {
    server,
    contexts: new Map([[1, { id: 1, name: 'example.com', tags: s.tags ?? ['premium'], config: vals(s.context, 'directory.yml', 5) }],
      [2, { id: 2, name: 'other.org', tags: [], config: new Map() }]]),
    users: new Map([['3@1', { config: vals(s.user, 'directory.yml', 9) }]]),
    contextSets,
    meta,
    stored: s.stored ?? [],
  };
}

const ALICE = { userId: 3, contextId: 1 };
const PREMIUM_OFF = `off:\n  withTags: premium\n  ${ENABLED}: false\n`;
const PREMIUM_DELAY = `d:\n  withTags: premium\n  ${DELAY}: 7\n`;

const cases: { name: string; setup: Setup; key?: string; expect: { value: unknown; scope: Scope; source?: string } }[] = [
  { name: 'user scope wins', setup: { server: { [ENABLED]: 'true' }, context: { [ENABLED]: 'true' }, user: { [ENABLED]: 'no' }, sets: { 'a.yml': PREMIUM_OFF } },
    expect: { value: false, scope: 'user', source: 'directory.yml:9' } },
  { name: 'context scope wins without a user value', setup: { server: { [ENABLED]: 'true' }, context: { [ENABLED]: 'off' }, sets: { 'a.yml': PREMIUM_OFF } },
    expect: { value: false, scope: 'context', source: 'directory.yml:5' } },
  { name: 'context set wins over server', setup: { server: { [ENABLED]: 'true' }, sets: { 'a.yml': PREMIUM_OFF } },
    expect: { value: false, scope: 'contextSets', source: 'contextSets/a.yml:3 (block off)' } },
  { name: 'server wins over default', setup: { server: { [ENABLED]: 'false' } },
    expect: { value: false, scope: 'server', source: 'websockets.properties:1' } },
  { name: 'built-in default', setup: {}, expect: { value: true, scope: 'default', source: 'built-in default' } },
  { name: 'context set not matching is ignored', setup: { tags: ['basic'], sets: { 'a.yml': PREMIUM_OFF } }, expect: { value: true, scope: 'default' } },
  { name: 'stored user value beats directory user value', setup: { user: { [ENABLED]: 'true' }, stored: [{ contextId: 1, userId: 3, key: ENABLED, value: 'false' }] },
    expect: { value: false, scope: 'user', source: 'store' } },
  { name: 'stored context value beats directory context value', setup: { context: { [ENABLED]: 'true' }, stored: [{ contextId: 1, userId: null, key: ENABLED, value: 'false' }] },
    expect: { value: false, scope: 'context', source: 'store' } },
  { name: 'stored context value does not beat a directory user value', setup: { user: { [ENABLED]: 'true' }, stored: [{ contextId: 1, userId: null, key: ENABLED, value: 'false' }] },
    expect: { value: true, scope: 'user' } },
  { name: 'stored value of another user does not apply', setup: { stored: [{ contextId: 1, userId: 4, key: ENABLED, value: 'false' }] },
    expect: { value: true, scope: 'default' } },
  { name: 'meta value overrides the properties value', setup: { server: { [ENABLED]: 'true' }, meta: `${ENABLED}:\n  value: false\n` },
    expect: { value: false, scope: 'server', source: 'meta/m.yml:2' } },
  { name: 'environment wins over a meta value', setup: { env: { [ENABLED]: 'true' }, meta: `${ENABLED}:\n  value: false\n` },
    expect: { value: true, scope: 'server', source: 'env:COM_OPENEXCHANGE_WEBSOCKETS_ENABLED' } },
  { name: 'final: user ignores nothing', setup: { user: { [ENABLED]: 'false' }, context: { [ENABLED]: 'true' }, meta: `${ENABLED}: {final: user}\n` },
    expect: { value: false, scope: 'user' } },
  { name: 'final: context ignores the user value', setup: { user: { [ENABLED]: 'false' }, context: { [ENABLED]: 'true' }, meta: `${ENABLED}: {final: context}\n` },
    expect: { value: true, scope: 'context' } },
  { name: 'final: contextSets ignores user and context', setup: { user: { [ENABLED]: 'true' }, context: { [ENABLED]: 'true' }, sets: { 'a.yml': PREMIUM_OFF }, meta: `${ENABLED}: {final: contextSets}\n` },
    expect: { value: false, scope: 'contextSets' } },
  { name: 'final: server uses only the server value', setup: { user: { [ENABLED]: 'true' }, context: { [ENABLED]: 'true' }, sets: { 'a.yml': PREMIUM_OFF }, server: { [ENABLED]: 'false' }, meta: `${ENABLED}: {final: server}\n` },
    expect: { value: false, scope: 'server' } },
  { name: 'final: server without a server value falls to the default', setup: { user: { [ENABLED]: 'false' }, sets: { 'a.yml': PREMIUM_OFF }, meta: `${ENABLED}: {final: server}\n` },
    expect: { value: true, scope: 'default' } },
  { name: 'non-cascade key ignores user, context and context sets', key: DELAY,
    setup: { user: { [DELAY]: '5' }, context: { [DELAY]: '6' }, sets: { 'd.yml': PREMIUM_DELAY }, server: { [DELAY]: '2000' } },
    expect: { value: 2000, scope: 'server' } },
  { name: 'non-cascade key falls to its default', key: DELAY, setup: { user: { [DELAY]: '5' }, context: { [DELAY]: '6' } },
    expect: { value: 1000, scope: 'default' } },
  { name: 'key outside the schema resolves to its raw string', key: 'com.example.theme', setup: { context: { 'com.example.theme': ' dark ' } },
    expect: { value: ' dark ', scope: 'context' } },
];

for (const c of cases) {
  test(`cascade: ${c.name}`, () => {
    const r = new CascadeResolver(build(c.setup)).resolve(c.key ?? ENABLED, ALICE);
    assert.deepEqual(r.value, c.expect.value);
    assert.equal(r.scope, c.expect.scope);
    if (c.expect.source !== undefined) assert.equal(r.source, c.expect.source);
  });
}

test('cascade: resolveForContext has no user scope; results are cached and frozen', () => {
  const r = new CascadeResolver(build({ user: { [ENABLED]: 'false' }, context: { [ENABLED]: 'true' } }));
  assert.equal(r.resolveForContext(ENABLED, 1).scope, 'context');
  assert.equal(r.resolve(ENABLED, ALICE), r.resolve(ENABLED, ALICE));
  assert.equal(r.resolve(ENABLED, { userId: 99, contextId: 1 }), r.resolveForContext(ENABLED, 1));
  assert.ok(Object.isFrozen(r.resolve(ENABLED, ALICE)));
  assert.equal(r.resolve(ENABLED, { userId: 1, contextId: 777 }).scope, 'default'); // unknown context
  assert.equal(r.resolve('com.example.unset', ALICE).raw, null);
});

const exprCases: [string, string[], boolean][] = [
  ['a | b & !c', ['a', 'c'], true],
  ['a | b & !c', ['b', 'c'], false],
  ['a | b & !c', ['b'], true],
  ['!(a | b)', [], true],
  ['!(a | b)', ['b'], false],
  ['(a | b) & c', ['a'], false],
  ['(a | b) & c', ['b', 'c'], true],
  ['!!a', ['a'], true],
  ['a & b | c & d', ['c', 'd'], true],
  ['a & (b | c) & d', ['a', 'c', 'd'], true],
  ['  42|example.com ', ['42'], true],
  ['groupware_plus&beta-1.x', ['groupware_plus', 'beta-1.x'], true],
];
for (const [text, tags, want] of exprCases) {
  test(`withTags: "${text}" on {${tags.join(',')}} is ${want}`, () => {
    const expr = parseTagExpression(text);
    assert.equal(evaluate(expr, new Set(tags)), want);
    // The resolver's compiled form must agree with evaluate.
    const names = [...tagNamesOf(expr)];
    const bits = new Uint32Array(1);
    names.forEach((n, i) => { if (tags.includes(n)) bits[0] |= 1 << i; });
    assert.equal(compileBits(expr, (n) => names.indexOf(n))(bits), want);
  });
}

const exprErrors: [string, number, RegExp][] = [
  ['', 1, /empty/],
  ['   ', 1, /empty/],
  ['(a | b', 1, /unbalanced '\('/],
  ['a | b)', 6, /unbalanced '\)'/],
  ['a &', 4, /expected a tag name.*end of expression/],
  ['| a', 1, /expected a tag name/],
  ['a & | b', 5, /expected a tag name.*'\|'/],
  ['a b', 3, /expected '&', '\|'/],
  ['a && b', 4, /expected a tag name/],
  ['a , b', 3, /unexpected character ','/],
  ['()', 2, /expected a tag name/],
  ['!', 2, /end of expression/],
];
for (const [text, column, reason] of exprErrors) {
  test(`withTags error: "${text}" at column ${column}`, () => {
    assert.throws(() => parseTagExpression(text), (e: unknown) => e instanceof TagExpressionError && e.column === column && reason.test(e.reason));
  });
}

test('addTags: chain a→b→c applies all blocks; list and string forms', () => {
  const r = new CascadeResolver(build({ tags: ['a'], sets: { 'chain.yml':
    'toB:\n  withTags: a\n  addTags: b\nToC:\n  withTags: b\n  addTags: [c, " d "]\nuseC:\n  withTags: c & d & !zzz\n  com.openexchange.websockets.enabled: false\n' } }));
  assert.deepEqual([...r.tagsOf(1)].sort(), ['1', 'a', 'b', 'c', 'd', 'example.com']);
  assert.equal(r.resolve(ENABLED, ALICE).value, false);
  assert.deepEqual([...r.tagsOf(2)].sort(), ['2', 'other.org']);
});

test('addTags: chain declared in reverse order still closes', () => {
  const r = new CascadeResolver(build({ tags: ['a'], sets: { 'x.yml': 'c:\n  withTags: b\n  addTags: c\nb:\n  withTags: a\n  addTags: b\n' } }));
  assert.ok(r.tagsOf(1).has('c'));
});

test('addTags: cycle a→b→a terminates', () => {
  const r = new CascadeResolver(build({ tags: ['a'], sets: { 'x.yml': 'ab:\n  withTags: a\n  addTags: b\nba:\n  withTags: b\n  addTags: a, x\nself:\n  withTags: "!nope"\n  addTags: nope\n' } }));
  assert.deepEqual([...r.tagsOf(1)].sort(), ['1', 'a', 'b', 'example.com', 'nope', 'x']);
});

test('overlapping sets: first in order wins, each conflict reported once', () => {
  const input = build({ tags: ['premium', 'beta'], sets: {
    'a.yml': `one:\n  withTags: premium\n  ${ENABLED}: false\n  tidings.connections.maxPerUser: 4\n`,
    'b.yml': `two:\n  withTags: beta | premium\n  ${ENABLED}: true\n  tidings.connections.maxPerUser: "4"\n`,
  } });
  const ctx2 = { id: 2, name: 'other.org', tags: ['premium', 'beta'], config: new Map() };
  const r = new CascadeResolver({ ...input, contexts: new Map([...input.contexts, [2, ctx2]]) });
  assert.equal(r.resolve(ENABLED, ALICE).value, false);
  assert.equal(r.resolve(ENABLED, ALICE).source, 'contextSets/a.yml:3 (block one)');
  assert.equal(r.conflicts().length, 1, r.conflicts().join('\n')); // maxPerUser agrees; two contexts, one line
  assert.match(r.conflicts()[0], /com\.openexchange\.websockets\.enabled: contextSets\/a\.yml:3 \(block one\).*contextSets\/b\.yml:3 \(block two\).*block one wins/);
});

test('context set file: values become strings with their lines', () => {
  const blocks = parseContextSetFile('b:\n  withTags: "42"\n  n: 0012\n  t: TRUE\n  s: \'x\'\n  e:\n', 'contextSets/v.yml');
  assert.equal(blocks[0].withTags, '42');
  assert.deepEqual([...blocks[0].values].map(([k, v]) => [k, v.value, v.line]), [['n', '0012', 3], ['t', 'TRUE', 4], ['s', 'x', 5], ['e', '', 6]]);
  assert.deepEqual(parseContextSetFile('', 'contextSets/empty.yml'), []);
});

const fileErrors: [string, string, { line: number; key: string | null; reason: RegExp }][] = [
  ['syntax error in withTags', 'good:\n  withTags: a\nbad:\n  withTags: premium & | beta\n', { line: 4, key: 'bad', reason: /^block 'bad': invalid withTags .*expected a tag name.*at column 23$/ }],
  ['syntax error in quoted withTags', 'q:\n  withTags: "(a | b"\n', { line: 2, key: 'q', reason: /block 'q'.*unbalanced.*column 14/ }],
  ['missing withTags', 'nowhere:\n  x: 1\n', { line: 1, key: 'nowhere', reason: /^block 'nowhere': has no withTags/ }],
  ['bad tag in addTags', 'b:\n  withTags: a\n  addTags: x, y z\n', { line: 3, key: 'b', reason: /invalid tag "y z".*column 15/ }],
  ['nested value', 'b:\n  withTags: a\n  com:\n    x: 1\n', { line: 3, key: 'b', reason: /com: expected a single value/ }],
  ['block not a map', 'b: 3\n', { line: 1, key: 'b', reason: /expected a mapping/ }],
  ['invalid YAML', 'b:\n  withTags: a\n\tx: 1\n', { line: 3, key: null, reason: /invalid YAML/ }],
  ['unquoted leading ! in withTags', 'b:\n  withTags: !beta\n', { line: 2, key: 'b', reason: /unquoted !beta as a tag, so quote/ }],
  ['unquoted leading & in withTags', 'b:\n  withTags: & a\n', { line: 2, key: null, reason: /invalid YAML.*quote values that start with/ }],
  ['duplicate block', 'b:\n  withTags: a\nb:\n  withTags: c\n', { line: 3, key: null, reason: /invalid YAML.*unique/i }],
];
for (const [name, text, want] of fileErrors) {
  test(`context set file error: ${name}`, () => {
    assert.throws(() => parseContextSetFile(text, 'contextSets/e.yml'), (e: unknown) => {
      assert.ok(e instanceof ConfigError, String(e));
      assert.equal(e.file, 'contextSets/e.yml');
      assert.equal(e.line, want.line, e.message);
      assert.equal(e.key, want.key);
      assert.match(e.reason, want.reason);
      return true;
    });
  });
}

test('meta file: final and value parsed; unknown scope is an error with file, line and key', () => {
  const entries = parseMetaFile(`${ENABLED}:\n  final: context\n  protected: false\nother: {value: 3}\n`, 'meta/a.yml');
  assert.deepEqual(entries.map((e) => [e.key, e.final, e.value?.value ?? null, e.line]), [[ENABLED, 'context', null, 1], ['other', null, '3', 4]]);
  assert.throws(() => parseMetaFile(`x: {}\n${ENABLED}:\n  final: reseller\n`, 'meta/b.yml'), (e: unknown) =>
    e instanceof ConfigError && e.file === 'meta/b.yml' && e.line === 3 && e.key === ENABLED && /unknown scope 'reseller'/.test(e.reason));
  assert.throws(() => parseMetaFile('k:\n  finel: user\n', 'meta/c.yml'), (e: unknown) => e instanceof ConfigError && e.line === 2 && /unknown metadata 'finel'/.test(e.reason));
});

test('validateCascadeInput names file, line and key for every bad value', () => {
  const input = build({
    server: { 'tidings.http.port': 'eighty', 'tidings.nope': '1', 'com.example.free': 'anything' },
    context: { [ENABLED]: 'maybe' },
    user: { [DELAY]: '5' },
    sets: { 's.yml': `s:\n  withTags: a\n  tidings.connections.maxPerUser: 0\n` },
    meta: `${ENABLED}: {value: sure}\n`,
    stored: [{ contextId: 1, userId: 3, key: 'tidings.session.ipCheck', value: 'nah' }],
  });
  // The same key in a second meta file: a duplicate to report.
  const errors = validateCascadeInput({ ...input, meta: [...input.meta, { ...input.meta[0], file: 'meta/z.yml', value: null }] });
  const got = errors.map((e) => `${e.file}:${e.line ?? '-'} ${e.key} | ${e.reason}`);
  const expectAll = [
    /^websockets\.properties:1 tidings\.http\.port \| expected an integer/,
    /^websockets\.properties:1 tidings\.nope \| unknown key/,
    /^meta\/m\.yml:1 com\.openexchange\.websockets\.enabled \| expected a boolean/,
    /^meta\/z\.yml:1 com\.openexchange\.websockets\.enabled \| metadata already given at meta\/m\.yml:1/,
    /^contextSets\/s\.yml:3 tidings\.connections\.maxPerUser \| block 's': expected an integer/,
    /^directory\.yml:5 com\.openexchange\.websockets\.enabled \| context 1: expected a boolean.*, got "maybe"/,
    /^directory\.yml:9 com\.openexchange\.websockets\.grizzly\.remote\.delayDuration \| user 3@1: this key is server-wide only/,
    /^store:- tidings\.session\.ipCheck \| user 3@1: expected a boolean/,
  ];
  assert.equal(got.length, expectAll.length, got.join('\n'));
  expectAll.forEach((re, i) => assert.match(got[i], re));
  assert.deepEqual(validateCascadeInput(build({ server: { [ENABLED]: 'true' }, sets: { 'a.yml': PREMIUM_OFF } })), []);
});
