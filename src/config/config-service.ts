import { EventEmitter } from 'node:events';
import { CascadeResolver, validateCascadeInput, type CascadeInput, type Resolved } from './cascade/resolver.js';
import { ConfigError } from './config-error.js';
import { loadConfig, typedSettings, type LoadedConfig } from './load-config.js';
import { coerce, SCHEMA, specOf, type KeySpec, type Settings } from './schema.js';
import { describeSource } from './sourced.js';
import type { ConfigStore, StoredValue } from '../ports/config-store.js';
import { userKey, type UserRef } from '../domain/types.js';
import type { Directory } from '../directory/directory.js';
import type { Logger } from '../log.js';
import { TidingsError } from '../errors.js';

export type ReloadOutcome =
  | {
      readonly ok: true;
      /** Keys whose value in force changed (reloadable keys only). */
      readonly changed: readonly string[];
      /** Keys changed in the files that only take effect after a restart; their old value stays in force. */
      readonly restartNeeded: readonly string[];
    }
  | { readonly ok: false; readonly error: string; readonly file?: string; readonly line?: number | null; readonly key?: string | null };

/** What `config get` answers: the value in force for a (context[, user]) and where it came from. */
export interface Lookup extends Resolved {
  readonly key: string;
  readonly context: number;
  readonly user: number | null;
  /** The schema type, or 'string' for a key outside the schema. */
  readonly type: string;
  /** Secrets are never answered; the value is replaced by '[redacted]' when one is set. */
  readonly redacted: boolean;
}

/** `config get` of a server-wide key: one value for the whole node, so no context or user. */
export interface ServerLookup extends Resolved {
  readonly key: string;
  readonly context: null;
  readonly user: null;
  readonly type: string;
  readonly redacted: boolean;
}

/**
 * Holds the configuration in force: files (reloadable), run-time values from the config store,
 * and the cascade resolver built over both. Any change builds a new resolver, which is how
 * resolution caches are invalidated: never by expiry.
 *
 * Non-reloadable keys keep the value they had at start-up until a restart, also in `settings`
 * and in `config get`: a reload that sees them changed only logs that a restart is needed.
 */
export class ConfigService {
  readonly #dir: string;
  readonly #env: NodeJS.ProcessEnv;
  readonly #store: ConfigStore;
  readonly #log: Logger;
  readonly #events = new EventEmitter();
  /** Context-set conflict lines already logged: a conflict is reported once, not on every rebuild. */
  readonly #reportedConflicts = new Set<string>();
  /** Bad run-time values already logged (they are skipped, never allowed to block a reload). */
  readonly #reportedBadStored = new Set<string>();
  #loaded!: LoadedConfig;
  #stored: readonly StoredValue[] = [];
  #resolver!: CascadeResolver;
  /** Store refreshes run one after the other, so a slow early read never overwrites a later one. */
  #refreshing: Promise<void> = Promise.resolve();

  constructor(opts: { dir: string; env?: NodeJS.ProcessEnv; store: ConfigStore; log: Logger; initial?: LoadedConfig }) {
    this.#dir = opts.dir;
    this.#env = opts.env ?? process.env;
    this.#store = opts.store;
    this.#log = opts.log;
    if (opts.initial) this.#loaded = opts.initial;
  }

  /** Loads files (unless given) and store values; throws ConfigError on a bad file. */
  async init(): Promise<void> {
    if (!this.#loaded) this.#loaded = loadConfig(this.#dir, this.#env);
    this.#stored = this.#usable(await this.#store.all());
    this.#commit(this.#loaded, this.#stored, this.#build(this.#loaded, this.#stored));
  }

  get current(): LoadedConfig {
    return this.#loaded;
  }

  get settings(): Settings {
    return this.#loaded.settings;
  }

  get directory(): Directory {
    return this.#loaded.directory;
  }

  resolve(key: string, user: UserRef): Resolved {
    return this.#resolver.resolve(key, user);
  }

  resolveForContext(key: string, contextId: number): Resolved {
    return this.#resolver.resolveForContext(key, contextId);
  }

  /**
   * `config get`: checks the key, context and user exist, then resolves. Unknown `tidings.*` keys are
   * refused (a typo); other keys outside the schema resolve to their raw text.
   */
  lookup(key: string, contextId: number, userId: number | null): Lookup {
    const spec = this.#checkTarget(key, contextId, userId);
    const r = userId === null ? this.resolveForContext(key, contextId) : this.resolve(key, { userId, contextId });
    const redacted = spec?.type === 'secret' && r.raw !== null && r.raw !== '';
    return Object.freeze({ ...r, value: redacted ? '[redacted]' : r.value, raw: redacted ? '[redacted]' : r.raw, key, context: contextId, user: userId, type: spec?.type ?? 'string', redacted });
  }

  /**
   * A server-wide key (one that no context or user can override) needs no context to be looked up;
   * asking so for a per-user key is refused, since its value in force depends on whom it is for.
   */
  lookupServer(key: string): ServerLookup {
    const spec = specOf(key);
    if (!spec && key.startsWith('tidings.')) throw new TidingsError('TIDINGS_UNKNOWN_KEY', `No such configuration key: ${key}`);
    if (spec?.cascade || !spec) throw new TidingsError('TIDINGS_VALIDATION', `${key} may differ per context and user: give the context (and user) to look it up for`);
    const sv = this.#loaded.server.get(key);
    const value = (this.#loaded.settings as Record<string, unknown>)[key] as Resolved['value'];
    const redacted = spec.type === 'secret' && sv !== undefined && sv.value !== '';
    return Object.freeze({
      key, context: null, user: null, type: spec.type, redacted,
      value: redacted ? '[redacted]' : value,
      raw: redacted ? '[redacted]' : sv?.value ?? null,
      scope: sv ? 'server' : 'default',
      source: sv ? describeSource(sv) : 'built-in default',
    });
  }

  /** Listeners get the keys whose server-scope value in force changed (empty for store-only changes). */
  onChange(fn: (changedKeys: readonly string[]) => void): void {
    this.#events.on('change', fn);
  }

  /**
   * Re-reads the directory. The new configuration is parsed and validated whole first; when anything
   * in it is wrong the old one stays in force and the first problem is logged with file, line and key.
   */
  reload(): ReloadOutcome {
    let fresh: LoadedConfig;
    let next: LoadedConfig;
    let resolver: CascadeResolver;
    try {
      fresh = loadConfig(this.#dir, this.#env);
      next = this.#keepNonReloadable(fresh);
      resolver = this.#build(next, this.#stored);
    } catch (e) {
      return this.#refused(e);
    }
    const before = this.#loaded.settings as Record<string, unknown>;
    const wanted = fresh.settings as Record<string, unknown>;
    const keys = Object.keys(SCHEMA);
    const changed = keys.filter((k) => specOf(k)!.reloadable && !sameValue(before[k], wanted[k]));
    const restartNeeded = keys.filter((k) => !specOf(k)!.reloadable && !sameValue(before[k], wanted[k]));
    for (const k of restartNeeded) {
      const sv = fresh.server.get(k);
      // No values in this line: a non-reloadable key may be a URL with credentials (tidings.redis.url).
      this.#log.warn({ key: k, source: sv ? describeSource(sv) : 'built-in default' },
        `${k} changed${sv ? ` (${describeSource(sv)})` : ''}: restart tidings for it to take effect; the old value stays in force until then`);
    }
    this.#commit(next, this.#stored, resolver);
    this.#log.info({ changed, restartNeeded }, `configuration reloaded; changed: ${changed.join(', ') || 'nothing'}`);
    this.#emitChange(changed);
    return { ok: true, changed, restartNeeded };
  }

  /** Re-reads run-time values from the store (after a change on any node). */
  refreshStore(): Promise<void> {
    const run = this.#refreshing.then(async () => {
      const stored = this.#usable(await this.#store.all());
      const resolver = this.#build(this.#loaded, stored);
      this.#stored = stored;
      this.#commit(this.#loaded, stored, resolver);
      this.#emitChange([]);
    });
    this.#refreshing = run.catch(() => undefined);
    return run;
  }

  /**
   * Validates and stores a run-time value at context scope (userId null) or user scope; answers what
   * is now in force there (which differs from the value when a `final` pins the key at a wider scope).
   */
  async set(key: string, value: string, contextId: number, userId: number | null): Promise<Lookup> {
    this.#checkScope(contextId, userId);
    const spec = settableSpec(key);
    const c = coerce(spec, value);
    if (!c.ok) throw new TidingsError('TIDINGS_CONFIG_TYPE', `${key} expects ${c.expected}, got '${value}'`, { key, expected: c.expected });
    await this.#store.set({ contextId, userId, key, value });
    await this.refreshStore();
    return this.lookup(key, contextId, userId);
  }

  /**
   * Removes a run-time value. A key `set` refuses can still have one (stored by an older version or
   * by hand): removing it is how an operator cleans up, so only a key with nothing stored is refused.
   * `now` is null for such a key: it has no cascade value to show.
   */
  async unset(key: string, contextId: number, userId: number | null): Promise<{ removed: boolean; now: Lookup | null }> {
    this.#checkScope(contextId, userId);
    const settable = specOf(key)?.cascade === true;
    const removed = await this.#store.unset(contextId, userId, key);
    if (!settable && !removed) settableSpec(key);
    await this.refreshStore();
    return { removed, now: settable ? this.lookup(key, contextId, userId) : null };
  }

  #checkTarget(key: string, contextId: number, userId: number | null): KeySpec | undefined {
    const spec = specOf(key);
    if (!spec && key.startsWith('tidings.')) throw new TidingsError('TIDINGS_UNKNOWN_KEY', `No such configuration key: ${key}`);
    this.#checkScope(contextId, userId);
    return spec;
  }

  #checkScope(contextId: number, userId: number | null): void {
    if (!this.directory.contexts.has(contextId)) throw new TidingsError('TIDINGS_UNKNOWN_CONTEXT', `No context ${contextId}`);
    if (userId === null) return;
    const key = userKey({ userId, contextId });
    if (!this.directory.users.has(key)) throw new TidingsError('TIDINGS_UNKNOWN_USER', `No user ${key}`);
  }

  /** A non-reloadable key keeps its value in force (its old source included) until a restart. */
  #keepNonReloadable(fresh: LoadedConfig): LoadedConfig {
    const old = this.#loaded;
    const server = new Map(fresh.server);
    const pinned = new Set<string>();
    for (const [key, spec] of Object.entries(SCHEMA) as [string, KeySpec][]) {
      if (spec.reloadable) continue;
      const was = old.server.get(key);
      const now = server.get(key);
      if (was?.value === now?.value) continue;
      pinned.add(key);
      if (was) server.set(key, was);
      else server.delete(key);
    }
    if (pinned.size === 0) return fresh;
    return Object.freeze({ ...fresh, server, settings: typedSettings(server) });
  }

  /** The new configuration is already in force: a listener that throws is logged, never undoes it or stops the others. */
  #emitChange(changed: readonly string[]): void {
    for (const fn of this.#events.listeners('change') as ((k: readonly string[]) => void)[]) {
      try {
        fn(changed);
      } catch (e) {
        this.#log.error({ err: e instanceof Error ? e.message : String(e), changed }, 'a component failed to apply the reloaded configuration');
      }
    }
  }

  #refused(e: unknown): ReloadOutcome {
    if (e instanceof ConfigError) {
      this.#log.error({ file: e.file, line: e.line, key: e.key, reason: e.reason },
        `configuration not reloaded, the old one stays in force: ${e.message}`);
      return { ok: false, error: e.message, file: e.file, line: e.line, key: e.key };
    }
    const msg = e instanceof Error ? e.message : String(e);
    this.#log.error({ err: msg }, `configuration not reloaded, the old one stays in force: ${msg}`);
    return { ok: false, error: msg };
  }

  /**
   * Run-time values that fit the schema. Values are checked when they are set, so a bad one can only
   * come from outside (an older version, a hand edit in Redis); it is skipped and logged once.
   */
  #usable(stored: readonly StoredValue[]): StoredValue[] {
    return stored.filter((s) => {
      const spec = specOf(s.key);
      let why: string | null = null;
      if (!spec) why = s.key.startsWith('tidings.') ? 'unknown key' : 'not a key that can be set per context or user';
      else if (!spec.cascade) why = 'server-wide key';
      else {
        const c = coerce(spec, s.value);
        if (!c.ok) why = `expected ${c.expected}`;
      }
      if (why === null) return true;
      const who = s.userId === null ? `context ${s.contextId}` : `user ${userKey({ userId: s.userId, contextId: s.contextId })}`;
      const line = `${who}: ${JSON.stringify(s.key)}: ${why}`;
      if (!this.#reportedBadStored.has(line)) {
        this.#reportedBadStored.add(line);
        // Quoted, and with lone surrogates as U+FFFD (what UTF-8 stored), so the key can be typed back.
        const unset = `tidings config unset ${JSON.stringify(wellFormed(s.key))} --context ${s.contextId}${s.userId === null ? '' : ` --user ${s.userId}`}`;
        this.#log.warn({ key: s.key, context: s.contextId, user: s.userId }, `ignoring a run-time value in the config store: ${line}; remove it with ${unset}`);
      }
      return false;
    });
  }

  #build(loaded: LoadedConfig, stored: readonly StoredValue[]): CascadeResolver {
    const input: CascadeInput = {
      server: loaded.server,
      contexts: loaded.directory.contexts,
      users: loaded.directory.users,
      contextSets: loaded.contextSets,
      meta: loaded.meta,
      stored,
    };
    const problems = validateCascadeInput(input);
    if (problems.length > 0) throw problems[0];
    return new CascadeResolver(input);
  }

  #commit(loaded: LoadedConfig, stored: readonly StoredValue[], resolver: CascadeResolver): void {
    this.#loaded = loaded;
    this.#stored = stored;
    this.#resolver = resolver;
    for (const c of resolver.conflicts()) {
      if (this.#reportedConflicts.has(c)) continue;
      this.#reportedConflicts.add(c);
      this.#log.warn({ conflict: c }, `context sets disagree: ${c}`);
    }
  }
}

/** Lone surrogates as U+FFFD, as UTF-8 (and so Redis) stores them. */
function wellFormed(text: string): string {
  return text.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
}

/** The spec of a key the admin API may set per context or user; anything else is a 400 naming why. */
function settableSpec(key: string): KeySpec {
  const spec = specOf(key);
  if (!spec) {
    throw new TidingsError('TIDINGS_UNKNOWN_KEY', `${key.startsWith('tidings.') ? 'No such configuration key' : 'Not a key tidings knows'}: ${JSON.stringify(key)}; only keys that can be set per context or user are accepted`, { key });
  }
  if (!spec.cascade) {
    throw new TidingsError('TIDINGS_KEY_SERVER_WIDE', `${key} is server-wide: it cannot be set per context or user; set it in a .properties file`, { key });
  }
  return spec;
}

function sameValue(a: unknown, b: unknown): boolean {
  return Array.isArray(a) && Array.isArray(b) ? a.length === b.length && a.every((x, i) => x === b[i]) : a === b;
}
