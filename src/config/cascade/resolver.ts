/**
 * The config cascade: user → context → context sets → server → built-in default, the first scope
 * with a value wins. Immutable: the loader builds a new resolver on every change, which is also how
 * its caches are invalidated.
 */
import { ConfigError } from '../config-error.js';
import { coerce, specOf } from '../schema.js';
import type { KeySpec } from '../schema.js';
import { describeSource } from '../sourced.js';
import type { SourcedValue } from '../sourced.js';
import type { StoredValue } from '../../ports/config-store.js';
import { parseUserKey, userKey } from '../../domain/types.js';
import type { UserRef } from '../../domain/types.js';
import type { ContextSetBlock } from './context-sets.js';
import type { FinalScope, MetaEntry } from './meta.js';
import { compileBits, tagNamesOf } from './tag-expression.js';

export type Scope = 'user' | 'context' | 'contextSets' | 'server' | 'default';
export type Value = string | number | boolean | readonly string[];

export interface Resolved {
  readonly value: Value;
  /** The text as written; null for a built-in default. */
  readonly raw: string | null;
  readonly scope: Scope;
  /** 'file:line', 'env:NAME', 'store', 'contextSets/x.yml:12 (block b)' or 'built-in default'. */
  readonly source: string;
}

export interface ContextEntry {
  readonly id: number;
  readonly name: string;
  readonly tags: readonly string[];
  readonly config: ReadonlyMap<string, SourcedValue>;
}

export interface CascadeInput {
  /** Server scope: .properties files, meta values and environment, already merged (applyMetaValues). */
  readonly server: ReadonlyMap<string, SourcedValue>;
  readonly contexts: ReadonlyMap<number, ContextEntry>;
  /** Keyed `<userId>@<contextId>`. */
  readonly users: ReadonlyMap<string, { readonly config: ReadonlyMap<string, SourcedValue> }>;
  /** In deterministic order: by file name, then block order within the file. */
  readonly contextSets: readonly ContextSetBlock[];
  readonly meta: readonly MetaEntry[];
  /** Run-time values; they win over directory.yml at the same scope. */
  readonly stored: readonly StoredValue[];
}

// Index of the most specific scope a key may still come from; `final: S` and `cascade: false` raise it.
const RANK: Record<FinalScope, number> = { user: 0, context: 1, contextSets: 2, server: 3 };

interface ContextState {
  readonly tags: ReadonlySet<string>;
  readonly blocks: readonly ContextSetBlock[];
  /** By index into the input's contextSets. */
  readonly matches: readonly boolean[];
  readonly values: ReadonlyMap<string, SourcedValue> | undefined;
  readonly users: ReadonlyMap<number, ReadonlyMap<string, SourcedValue>> | undefined;
  readonly byKey: Map<string, Resolved>;
  readonly byUser: Map<number, Map<string, Resolved>>;
}

const STORE = (value: string): SourcedValue => ({ value, file: 'store', line: null });

export class CascadeResolver {
  private readonly server = new Map<string, SourcedValue>();
  private readonly finalRank = new Map<string, number>();
  private readonly rankCache = new Map<string, number>();
  private readonly contextValues = new Map<number, Map<string, SourcedValue>>();
  private readonly userValues = new Map<number, Map<number, Map<string, SourcedValue>>>();
  private readonly states = new Map<number, ContextState>();
  private readonly conflictLines: string[] = [];
  private readonly matching: Matching;
  private readonly closures = new Map<string, Closure>();

  constructor(private readonly input: CascadeInput) {
    this.matching = compileMatching(input.contextSets);
    for (const [key, v] of input.server) this.server.set(key, v);
    const seenMeta = new Set<string>();
    for (const m of input.meta) {
      if (seenMeta.has(m.key)) continue; // validateCascadeInput reports the duplicate
      seenMeta.add(m.key);
      if (m.final !== null) this.finalRank.set(m.key, RANK[m.final]);
    }
    for (const [id, ctx] of input.contexts) {
      if (ctx.config.size > 0) this.contextValues.set(id, new Map(ctx.config));
    }
    for (const [text, u] of input.users) {
      if (u.config.size === 0) continue;
      const ref = parseUserKey(text);
      if (ref !== null) this.userMap(ref.contextId, ref.userId, u.config);
    }
    for (const s of input.stored) {
      if (s.userId === null) upsert(this.contextValues, s.contextId).set(s.key, STORE(s.value));
      else this.userMap(s.contextId, s.userId).set(s.key, STORE(s.value));
    }
    // Eager for known contexts so conflicts() is complete; unknown ones are built on first use.
    for (const id of input.contexts.keys()) this.state(id);
    this.findConflicts();
  }

  resolve(key: string, user: UserRef): Resolved {
    const st = this.state(user.contextId);
    const own = st.users?.get(user.userId);
    // Most users have no values of their own; they share the context's cached result.
    if (own === undefined || !this.reaches(key, 'user')) return this.fromContext(st, key);
    const sv = own.get(key);
    if (sv === undefined) return this.fromContext(st, key);
    let cache = st.byUser.get(user.userId);
    if (cache === undefined) st.byUser.set(user.userId, (cache = new Map()));
    let r = cache.get(key);
    if (r === undefined) cache.set(key, (r = make(key, sv, 'user', describeSource(sv))));
    return r;
  }

  resolveForContext(key: string, contextId: number): Resolved {
    return this.fromContext(this.state(contextId), key);
  }

  tagsOf(contextId: number): ReadonlySet<string> {
    return this.state(contextId).tags;
  }

  conflicts(): readonly string[] {
    return this.conflictLines;
  }

  private fromContext(st: ContextState, key: string): Resolved {
    let r = st.byKey.get(key);
    if (r === undefined) st.byKey.set(key, (r = this.compute(st, key)));
    return r;
  }

  private compute(st: ContextState, key: string): Resolved {
    const ctxValue = this.reaches(key, 'context') ? st.values?.get(key) : undefined;
    if (ctxValue !== undefined) return make(key, ctxValue, 'context', describeSource(ctxValue));
    if (this.reaches(key, 'contextSets')) {
      for (const b of st.blocks) {
        const v = b.values.get(key);
        if (v !== undefined) return make(key, v, 'contextSets', `${describeSource(v)} (block ${b.name})`);
      }
    }
    const sv = this.server.get(key);
    if (sv !== undefined) return make(key, sv, 'server', describeSource(sv));
    const spec = specOf(key);
    return Object.freeze({ value: spec ? (spec.default as Value) : '', raw: null, scope: 'default', source: 'built-in default' });
  }

  /**
   * Whether `key` may still come from `scope`: the one place where meta `final` and a server-wide
   * key (`cascade: false`) cut the cascade short.
   */
  private reaches(key: string, scope: FinalScope): boolean {
    return this.rankOf(key) <= RANK[scope];
  }

  private rankOf(key: string): number {
    let rank = this.rankCache.get(key);
    if (rank === undefined) {
      const spec = specOf(key);
      rank = spec !== undefined && !spec.cascade ? RANK.server : (this.finalRank.get(key) ?? RANK.user);
      this.rankCache.set(key, rank);
    }
    return rank;
  }

  private state(contextId: number): ContextState {
    let st = this.states.get(contextId);
    if (st === undefined) {
      const ctx = this.input.contexts.get(contextId);
      const own = ctx ? [ctx.name, String(contextId), ...ctx.tags] : [String(contextId)];
      const { added, blocks, matches } = closeTags(this.input.contextSets, this.matching, own, this.closures);
      st = {
        tags: new Set([...own, ...added]), blocks, matches,
        values: this.contextValues.get(contextId),
        users: this.userValues.get(contextId),
        byKey: new Map(), byUser: new Map(),
      };
      this.states.set(contextId, st);
    }
    return st;
  }

  private userMap(contextId: number, userId: number, from?: ReadonlyMap<string, SourcedValue>): Map<string, SourcedValue> {
    const byUser = upsert(this.userValues, contextId);
    let m = byUser.get(userId);
    if (m === undefined) byUser.set(userId, (m = new Map(from)));
    return m;
  }

  /**
   * Which pairs of blocks disagree does not depend on the context, so those pairs are found once;
   * each context then only checks whether both blocks of a still-unreported pair match it.
   */
  private findConflicts(): void {
    const all = this.input.contextSets;
    const byPair = new Map<number, string[]>();
    const byKey = new Map<string, number[]>();
    all.forEach((b, i) => {
      for (const key of b.values.keys()) if (this.reaches(key, 'contextSets')) upsertList(byKey, key).push(i);
    });
    for (const [key, idx] of byKey) {
      for (let x = 0; x < idx.length; x++) {
        for (let y = x + 1; y < idx.length; y++) {
          const [i, j] = [idx[x], idx[y]];
          if (!sameValue(key, all[i].values.get(key)!.value, all[j].values.get(key)!.value)) upsertList(byPair, i * all.length + j).push(key);
        }
      }
    }
    // Unreported pairs, compacted in place: pairs that never both match stay for every context.
    const pending = Float64Array.from([...byPair.keys()].sort((p, q) => p - q));
    let count = pending.length;
    const seen = new Set<readonly boolean[]>();
    for (const [id, ctx] of this.input.contexts) {
      if (count === 0) return;
      const st = this.state(id);
      // Contexts sharing a tag closure share its matches array; the first one stands for all.
      if (seen.has(st.matches)) continue;
      seen.add(st.matches);
      let kept = 0;
      for (let n = 0; n < count; n++) {
        const pair = pending[n];
        const [i, j] = [Math.floor(pair / all.length), pair % all.length];
        if (!st.matches[i] || !st.matches[j]) { pending[kept++] = pair; continue; }
        for (const key of byPair.get(pair)!) {
          const [a, b] = [all[i].values.get(key)!, all[j].values.get(key)!];
          this.conflictLines.push(
            `${key}: ${describeSource(a)} (block ${all[i].name}) says "${a.value}" but ${describeSource(b)} (block ${all[j].name}) says "${b.value}"; ` +
            `both match context ${id} (${ctx.name}), block ${all[i].name} wins because it comes first`,
          );
        }
      }
      count = kept;
    }
  }
}

type Matcher = (bits: Uint32Array) => boolean;

/** Block tests compiled once per resolver over the tags that some expression mentions. */
interface Matching {
  readonly bitOf: ReadonlyMap<string, number>;
  readonly words: number;
  readonly test: readonly Matcher[];
}

function compileMatching(all: readonly ContextSetBlock[]): Matching {
  const bitOf = new Map<string, number>();
  for (const b of all) for (const name of tagNamesOf(b.expr)) if (!bitOf.has(name)) bitOf.set(name, bitOf.size);
  const test = all.map((b) => compileBits(b.expr, (name) => bitOf.get(name)!));
  return { bitOf, words: Math.ceil(bitOf.size / 32), test };
}

interface Closure {
  /** Tags that matching blocks added, beyond the context's own. */
  readonly added: readonly string[];
  readonly blocks: readonly ContextSetBlock[];
  readonly matches: readonly boolean[];
}

/**
 * A context's tags grow by the addTags of every matching block until nothing changes. Tags are only
 * ever added, so this terminates on cycles; with `!` a block may stop matching once tags were added,
 * and then (as in the reference deployment) only the final tag set decides which blocks apply.
 * The outcome depends only on which mentioned tags a context starts with, so contexts that share
 * those (the usual case: many contexts, few tag combinations) share one computation through `memo`.
 */
function closeTags(all: readonly ContextSetBlock[], m: Matching, base: readonly string[], memo: Map<string, Closure>): Closure {
  const bits = new Uint32Array(m.words);
  // True when the tag is new and some expression mentions it, i.e. it can change a match.
  const add = (t: string): boolean => {
    const bit = m.bitOf.get(t);
    if (bit === undefined || (bits[bit >>> 5] & (1 << (bit & 31))) !== 0) return false;
    bits[bit >>> 5] |= 1 << (bit & 31);
    return true;
  };
  for (const t of base) add(t);
  const memoKey = bits.join(',');
  const known = memo.get(memoKey);
  if (known !== undefined) return known;
  const added: string[] = [];
  const fired = new Array<boolean>(all.length).fill(false);
  let grew = false;
  for (let changed = true; changed;) {
    changed = false;
    for (let i = 0; i < all.length; i++) {
      if (fired[i] || !m.test[i](bits)) continue;
      fired[i] = true;
      for (const t of all[i].addTags) {
        added.push(t);
        if (add(t)) changed = true;
      }
    }
    grew ||= changed;
  }
  // Without added tags the single pass already is the final answer (the common case: few addTags).
  const matches = grew ? m.test.map((t) => t(bits)) : fired;
  const closure = { added, blocks: all.filter((_, i) => matches[i]), matches };
  memo.set(memoKey, closure);
  return closure;
}

function make(key: string, sv: SourcedValue, scope: Scope, source: string): Resolved {
  const spec = specOf(key);
  let value: Value = sv.value;
  if (spec !== undefined) {
    const c = coerce(spec, sv.value);
    // Only reachable when the loader skipped validateCascadeInput; failing loudly beats a silent fallback.
    if (!c.ok) throw new ConfigError(sv.file, sv.line, key, `expected ${c.expected}, got "${sv.value}"`);
    value = c.value;
  }
  return Object.freeze({ value, raw: sv.value, scope, source });
}

function sameValue(key: string, a: string, b: string): boolean {
  const spec = specOf(key);
  if (spec === undefined) return a === b;
  const ca = coerce(spec, a);
  const cb = coerce(spec, b);
  if (!ca.ok || !cb.ok) return a === b;
  return Array.isArray(ca.value) && Array.isArray(cb.value) ? ca.value.join(',') === cb.value.join(',') : ca.value === cb.value;
}

function upsertList<K, V>(m: Map<K, V[]>, key: K): V[] {
  let list = m.get(key);
  if (list === undefined) m.set(key, (list = []));
  return list;
}

function upsert<K, V>(m: Map<number, Map<K, V>>, id: number): Map<K, V> {
  let inner = m.get(id);
  if (inner === undefined) m.set(id, (inner = new Map()));
  return inner;
}

/**
 * Checks every value at every scope against the schema, so the resolver never meets a bad value at
 * run time. Returns every problem (empty = valid), each naming file, line and key.
 */
export function validateCascadeInput(input: CascadeInput): ConfigError[] {
  const errors: ConfigError[] = [];
  const check = (key: string, sv: SourcedValue, where: 'server' | 'elsewhere', prefix = ''): void => {
    const spec: KeySpec | undefined = specOf(key);
    if (spec === undefined) {
      if (key.startsWith('tidings.')) errors.push(new ConfigError(sv.file, sv.line, key, `${prefix}unknown key`));
      return;
    }
    // Silently ignoring a server-wide key set per context would leave operators guessing why it has no effect.
    if (!spec.cascade && where !== 'server') {
      errors.push(new ConfigError(sv.file, sv.line, key, `${prefix}this key is server-wide only; set it in a .properties file`));
      return;
    }
    const c = coerce(spec, sv.value);
    if (!c.ok) errors.push(new ConfigError(sv.file, sv.line, key, `${prefix}expected ${c.expected}, got "${sv.value}"`));
  };

  for (const [key, sv] of input.server) check(key, sv, 'server');
  const firstMeta = new Map<string, MetaEntry>();
  for (const m of input.meta) {
    const first = firstMeta.get(m.key);
    if (first !== undefined) {
      errors.push(new ConfigError(m.file, m.line, m.key, `metadata already given at ${first.file}:${first.line}; a key may have one metadata entry`));
      continue;
    }
    firstMeta.set(m.key, m);
    // A merged meta value was checked with the server scope above; one the environment shadows is checked here.
    if (m.value !== null && input.server.get(m.key) !== m.value) check(m.key, m.value, 'server');
    else if (specOf(m.key) === undefined && m.key.startsWith('tidings.')) errors.push(new ConfigError(m.file, m.line, m.key, 'unknown key'));
  }
  for (const b of input.contextSets) {
    for (const [key, sv] of b.values) check(key, sv, 'elsewhere', `block '${b.name}': `);
  }
  for (const [id, ctx] of input.contexts) {
    for (const [key, sv] of ctx.config) check(key, sv, 'elsewhere', `context ${id}: `);
  }
  for (const [text, u] of input.users) {
    if (parseUserKey(text) === null) {
      const any = u.config.values().next().value as SourcedValue | undefined;
      errors.push(new ConfigError(any?.file ?? 'directory.yml', any?.line ?? null, null, `user '${text}' is not of the form <userId>@<contextId>`));
      continue;
    }
    for (const [key, sv] of u.config) check(key, sv, 'elsewhere', `user ${text}: `);
  }
  for (const s of input.stored) {
    const who = s.userId === null ? `context ${s.contextId}` : `user ${userKey({ userId: s.userId, contextId: s.contextId })}`;
    check(s.key, STORE(s.value), 'elsewhere', `${who}: `);
  }
  return errors;
}
