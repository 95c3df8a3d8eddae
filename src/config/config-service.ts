import { EventEmitter } from 'node:events';
import { CascadeResolver, validateCascadeInput, type CascadeInput, type Resolved } from './cascade/resolver.js';
import { ConfigError } from './config-error.js';
import { loadConfig, type LoadedConfig } from './load-config.js';
import { coerce, SCHEMA, specOf, type Settings } from './schema.js';
import type { ConfigStore, StoredValue } from '../ports/config-store.js';
import type { UserRef } from '../domain/types.js';
import type { Directory } from '../directory/directory.js';
import type { Logger } from '../log.js';
import { TidingsError } from '../errors.js';

export type ReloadOutcome =
  | { readonly ok: true; readonly changed: readonly string[]; readonly restartNeeded: readonly string[] }
  | { readonly ok: false; readonly error: string };

/**
 * Holds the configuration in force: files (reloadable), run-time values from the config store,
 * and the cascade resolver built over both. Any change builds a new resolver, which is how
 * resolution caches are invalidated: never by expiry.
 */
export class ConfigService {
  readonly #dir: string;
  readonly #env: NodeJS.ProcessEnv;
  readonly #store: ConfigStore;
  readonly #log: Logger;
  readonly #events = new EventEmitter();
  #loaded!: LoadedConfig;
  #stored: readonly StoredValue[] = [];
  #resolver!: CascadeResolver;

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
    this.#stored = await this.#store.all();
    this.#resolver = this.#build(this.#loaded, this.#stored);
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

  /** Listeners get the keys whose server-scope value changed (empty for store-only changes). */
  onChange(fn: (changedKeys: readonly string[]) => void): void {
    this.#events.on('change', fn);
  }

  /** Re-reads the directory; the old configuration stays in force when anything in the new one is wrong. */
  reload(): ReloadOutcome {
    let next: LoadedConfig;
    let resolver: CascadeResolver;
    try {
      next = loadConfig(this.#dir, this.#env);
      resolver = this.#build(next, this.#stored);
    } catch (e) {
      const msg = e instanceof ConfigError ? e.message : String(e);
      this.#log.error({ err: msg }, `configuration not reloaded, the old one stays in force: ${msg}`);
      return { ok: false, error: msg };
    }
    const changed = Object.keys(SCHEMA).filter((k) => !sameValue((this.#loaded.settings as Record<string, unknown>)[k], (next.settings as Record<string, unknown>)[k]));
    const restartNeeded = changed.filter((k) => !specOf(k)!.reloadable);
    for (const k of restartNeeded) this.#log.warn({ key: k }, `${k} changed: it takes effect after a restart`);
    this.#loaded = next;
    this.#resolver = resolver;
    this.#log.info({ changed }, 'configuration reloaded');
    this.#events.emit('change', changed);
    return { ok: true, changed, restartNeeded };
  }

  /** Re-reads run-time values from the store (after a change on any node). */
  async refreshStore(): Promise<void> {
    this.#stored = await this.#store.all();
    this.#resolver = this.#build(this.#loaded, this.#stored);
    this.#events.emit('change', []);
  }

  /** Validates and stores a run-time value at context scope (userId null) or user scope. */
  async set(key: string, value: string, contextId: number, userId: number | null): Promise<void> {
    this.#checkScope(key, contextId, userId);
    const spec = specOf(key);
    if (spec) {
      const c = coerce(spec, value);
      if (!c.ok) throw new TidingsError('TIDINGS_CONFIG_TYPE', `${key} expects ${c.expected}, got '${value}'`);
    }
    await this.#store.set({ contextId, userId, key, value });
    await this.refreshStore();
  }

  async unset(key: string, contextId: number, userId: number | null): Promise<boolean> {
    this.#checkScope(key, contextId, userId);
    const removed = await this.#store.unset(contextId, userId, key);
    await this.refreshStore();
    return removed;
  }

  #checkScope(key: string, contextId: number, userId: number | null): void {
    const spec = specOf(key);
    if (!spec && key.startsWith('tidings.')) throw new TidingsError('TIDINGS_UNKNOWN_KEY', `No such configuration key: ${key}`);
    if (spec && !spec.cascade) throw new TidingsError('TIDINGS_CONFIG_TYPE', `${key} is server-wide: it cannot be set per context or user`);
    if (!this.directory.contexts.has(contextId)) throw new TidingsError('TIDINGS_UNKNOWN_CONTEXT', `No context ${contextId}`);
    if (userId !== null && !this.directory.users.has(`${userId}@${contextId}`)) throw new TidingsError('TIDINGS_UNKNOWN_USER', `No user ${userId}@${contextId}`);
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
    const resolver = new CascadeResolver(input);
    for (const c of resolver.conflicts()) this.#log.warn({ conflict: c }, `context sets disagree: ${c}`);
    return resolver;
  }
}

function sameValue(a: unknown, b: unknown): boolean {
  return Array.isArray(a) && Array.isArray(b) ? a.length === b.length && a.every((x, i) => x === b[i]) : a === b;
}
