import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseContextSetFile, type ContextSetBlock } from './cascade/context-sets.js';
import { applyMetaValues, parseMetaFile, type MetaEntry } from './cascade/meta.js';
import { ConfigError } from './config-error.js';
import { parseProperties } from './properties.js';
import { coerce, envNameOf, SCHEMA, specOf, type ConfigKey, type Settings } from './schema.js';
import type { SourcedValue } from './sourced.js';
import { parseDirectory } from '../directory/load-directory.js';
import type { Directory } from '../directory/directory.js';

/** Everything read from the config directory and the environment: parsed, merged, validated, frozen. */
export interface LoadedConfig {
  readonly dir: string;
  /** Server-scope values: `*.properties`, then `meta/*.yml` values, then the environment (env wins). */
  readonly server: ReadonlyMap<string, SourcedValue>;
  /** Typed server-scope settings with defaults applied. */
  readonly settings: Settings;
  readonly directory: Directory;
  readonly contextSets: readonly ContextSetBlock[];
  readonly meta: readonly MetaEntry[];
}

const EMPTY_DIRECTORY: Directory = Object.freeze({ contexts: new Map(), users: new Map(), byLogin: new Map() });

/** Reads `dir`; throws the first ConfigError found (file, line, key). Pure apart from reading files. */
export function loadConfig(dir: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  if (!isDir(dir)) throw new ConfigError(dir, null, null, 'config directory does not exist');
  const server = new Map<string, SourcedValue>();

  for (const name of listFiles(dir, '.properties')) {
    for (const e of parseProperties(readFileSync(join(dir, name), 'utf8'), name)) {
      server.set(e.key, Object.freeze({ value: e.value, file: name, line: e.line }));
    }
  }

  const meta: MetaEntry[] = [];
  for (const name of listFiles(join(dir, 'meta'), '.yml', '.yaml')) {
    meta.push(...parseMetaFile(readFileSync(join(dir, 'meta', name), 'utf8'), `meta/${name}`));
  }
  for (const key of Object.keys(SCHEMA)) {
    const name = envNameOf(key);
    const v = env[name];
    if (v !== undefined) server.set(key, Object.freeze({ value: v, file: `env:${name}`, line: null }));
  }
  applyMetaValues(server, meta);

  const contextSets: ContextSetBlock[] = [];
  for (const name of listFiles(join(dir, 'contextSets'), '.yml', '.yaml')) {
    contextSets.push(...parseContextSetFile(readFileSync(join(dir, 'contextSets', name), 'utf8'), `contextSets/${name}`));
  }

  const dirFile = ['directory.yml', 'directory.yaml'].find((n) => isFile(join(dir, n)));
  const directory = dirFile ? parseDirectory(readFileSync(join(dir, dirFile), 'utf8'), dirFile) : EMPTY_DIRECTORY;

  const settings = typedSettings(server);
  return Object.freeze({ dir, server, settings, directory, contextSets: Object.freeze(contextSets), meta: Object.freeze(meta) });
}

/** Server scope as typed values; an unknown `tidings.*` key or a value of the wrong type is an error at its line. */
export function typedSettings(server: ReadonlyMap<string, SourcedValue>): Settings {
  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(SCHEMA)) out[key] = spec.default;
  for (const [key, sv] of server) {
    const spec = specOf(key);
    if (!spec) {
      if (key.startsWith('tidings.')) throw new ConfigError(sv.file, sv.line, key, 'unknown key (a typo?)');
      continue;
    }
    const c = coerce(spec, sv.value);
    if (!c.ok) throw new ConfigError(sv.file, sv.line, key, `expected ${c.expected}, got '${sv.value}'`);
    out[key as ConfigKey] = c.value;
  }
  return Object.freeze(out) as Settings;
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/** Sorted so that the load order (and so the context-set order) is the same on every node. */
function listFiles(dir: string, ...exts: string[]): string[] {
  if (!isDir(dir)) return [];
  return readdirSync(dir).filter((n) => exts.some((e) => n.endsWith(e)) && isFile(join(dir, n))).sort();
}
