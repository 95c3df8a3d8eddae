/**
 * Resolutions per second of com.openexchange.websockets.enabled for random users:
 * 10,000 users, 1,000 contexts, 100 context sets. Run: node dist/bench/cascade-resolve.js
 */
import { cpus } from 'node:os';
import { parseContextSetFile } from '../src/config/cascade/context-sets.js';
import type { ContextSetBlock } from '../src/config/cascade/context-sets.js';
import { CascadeResolver, validateCascadeInput } from '../src/config/cascade/resolver.js';
import type { CascadeInput, ContextEntry } from '../src/config/cascade/resolver.js';
import { evaluate } from '../src/config/cascade/tag-expression.js';
import type { SourcedValue } from '../src/config/sourced.js';
import type { UserRef } from '../src/domain/types.js';

const KEY = 'com.openexchange.websockets.enabled';
const USERS = 10_000;
const CONTEXTS = 1_000;
const SETS = 100;
const POOL = Array.from({ length: 30 }, (_, i) => `tag${i}`);

// Seeded so every run measures the same tree.
let seed = 0x2545f491;
function rand(): number {
  seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5;
  return (seed >>> 0) / 0x1_0000_0000;
}
const pick = <T>(a: readonly T[]): T => a[Math.floor(rand() * a.length)];

function expression(depth: number): string {
  if (depth === 0 || rand() < 0.35) return (rand() < 0.2 ? '!' : '') + pick(POOL);
  const e = `${expression(depth - 1)} ${rand() < 0.5 ? '&' : '|'} ${expression(depth - 1)}`;
  return rand() < 0.3 ? `!(${e})` : `(${e})`;
}

function buildInput(): CascadeInput {
  const v = (value: string, file: string, line: number): SourcedValue => ({ value, file, line });
  const contexts = new Map<number, ContextEntry>();
  for (let id = 1; id <= CONTEXTS; id++) {
    const tags = new Set<string>();
    for (let n = 1 + Math.floor(rand() * 4); n > 0; n--) tags.add(pick(POOL));
    const config = new Map<string, SourcedValue>();
    if (rand() < 0.05) config.set(KEY, v(rand() < 0.5 ? 'true' : 'false', 'directory.yml', id));
    contexts.set(id, { id, name: `ctx${id}.example`, tags: [...tags], config });
  }
  const users = new Map<string, { config: ReadonlyMap<string, SourcedValue> }>();
  for (let u = 1; u <= USERS; u++) {
    const config = new Map<string, SourcedValue>();
    if (rand() < 0.05) config.set(KEY, v('false', 'directory.yml', 5000 + u));
    users.set(`${u}@${1 + (u % CONTEXTS)}`, { config });
  }
  const contextSets: ContextSetBlock[] = [];
  for (let f = 0; f < 10; f++) {
    let yaml = '';
    for (let b = 0; b < SETS / 10; b++) {
      yaml += `set${f}_${b}:\n  withTags: "${expression(3)}"\n`;
      if (rand() < 0.3) yaml += `  addTags: ${pick(POOL)}, ${pick(POOL)}\n`;
      if (rand() < 0.5) yaml += `  ${KEY}: ${rand() < 0.5}\n`;
      if (rand() < 0.5) yaml += `  tidings.connections.maxPerUser: ${1 + Math.floor(rand() * 20)}\n`;
    }
    contextSets.push(...parseContextSetFile(yaml, `contextSets/f${f}.yml`));
  }
  return {
    server: new Map([[KEY, v('true', 'websockets.properties', 1)]]),
    contexts, users, contextSets, meta: [], stored: [],
  };
}

const input = buildInput();
const allUsers: UserRef[] = [...input.users.keys()].map((k) => {
  const [u, c] = k.split('@').map(Number);
  return { userId: u, contextId: c };
});
let sink = 0;
const ms = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e6;

const errors = validateCascadeInput(input);
if (errors.length > 0) throw errors[0];

// Cold: a fresh resolver (as after every reload), then each user once in random order.
const ROUNDS = 20;
let buildMs = 0;
let buildMin = Infinity;
let coldMs = 0;
for (let r = 0; r < ROUNDS; r++) {
  const order = allUsers.slice();
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  let t0 = process.hrtime.bigint();
  const resolver = new CascadeResolver(input);
  const took = ms(t0);
  buildMs += took;
  buildMin = Math.min(buildMin, took);
  t0 = process.hrtime.bigint();
  for (const u of order) if (resolver.resolve(KEY, u).value === true) sink++;
  coldMs += ms(t0);
}

// Warm: random users on one resolver whose caches are filled.
const resolver = new CascadeResolver(input);
for (const u of allUsers) resolver.resolve(KEY, u);
const randomUsers = Array.from({ length: 1 << 16 }, () => pick(allUsers));
const WARM = 5_000_000;
const t0 = process.hrtime.bigint();
for (let i = 0; i < WARM; i++) if (resolver.resolve(KEY, randomUsers[i & 0xffff]).value === true) sink++;
const warmMs = ms(t0);

const rate = (n: number, t: number): string => Math.round(n / (t / 1000)).toLocaleString('en-US');
const blocksPerContext = [...input.contexts.keys()].reduce((n, id) => n + input.contextSets.filter((b) => evaluate(b.expr, resolver.tagsOf(id))).length, 0) / CONTEXTS;
console.log(`node ${process.version}, ${cpus()[0]?.model ?? 'unknown CPU'}, single thread`);
console.log(`${USERS} users, ${CONTEXTS} contexts, ${input.contextSets.length} context sets (${blocksPerContext.toFixed(1)} matching per context), ${resolver.conflicts().length} conflicts reported`);
console.log('');
console.log('| case | resolutions | time (ms) | resolutions/s |');
console.log('|---|---:|---:|---:|');
console.log(`| construct resolver (avg / best of ${ROUNDS}) | - | ${(buildMs / ROUNDS).toFixed(1)} / ${buildMin.toFixed(1)} | - |`);
console.log(`| cold, resolve only (each user once) | ${USERS * ROUNDS} | ${coldMs.toFixed(1)} | ${rate(USERS * ROUNDS, coldMs)} |`);
console.log(`| cold, construction included | ${USERS * ROUNDS} | ${(coldMs + buildMs).toFixed(1)} | ${rate(USERS * ROUNDS, coldMs + buildMs)} |`);
console.log(`| warm, random users | ${WARM} | ${warmMs.toFixed(1)} | ${rate(WARM, warmMs)} |`);
if (sink < 0) console.log(sink); // keeps the loops from being optimised away
