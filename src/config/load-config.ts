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

/**
 * Reads `dir`; throws the first ConfigError found (file, line, key). Pure apart from reading files.
 * Given `errors`, it throws none: every problem is appended there and loading goes on with what
 * could be read (`tidings config check` prints them all, as `nginx -t` does).
 */
export function loadConfig(dir: string, env: NodeJS.ProcessEnv = process.env, errors?: ConfigError[]): LoadedConfig {
  if (!isDir(dir)) {
    const e = new ConfigError(dir, null, null, 'config directory does not exist');
    if (!errors) throw e;
    errors.push(e);
  }
  const server = new Map<string, SourcedValue>();
  /** One file's parse: its first problem is reported and the file contributes what the parser keeps. */
  const read = <T>(file: string, parse: (text: string) => T, empty: T): T => {
    try {
      return parse(readFileSync(join(dir, file), 'utf8'));
    } catch (e) {
      if (!errors) throw e;
      errors.push(e instanceof ConfigError ? e : new ConfigError(file, null, null, `cannot read: ${(e as Error).message}`));
      return empty;
    }
  };

  for (const name of listFiles(dir, '.properties')) {
    for (const e of read(name, (t) => parseProperties(t, name), [])) {
      server.set(e.key, Object.freeze({ value: e.value, file: name, line: e.line }));
    }
  }

  const meta: MetaEntry[] = [];
  for (const name of listFiles(join(dir, 'meta'), '.yml', '.yaml')) {
    meta.push(...read(`meta/${name}`, (t) => parseMetaFile(t, `meta/${name}`, errors), []));
  }
  for (const key of Object.keys(SCHEMA)) {
    const name = envNameOf(key);
    const v = env[name];
    if (v !== undefined) server.set(key, Object.freeze({ value: v, file: `env:${name}`, line: null }));
  }
  applyMetaValues(server, meta);

  const contextSets: ContextSetBlock[] = [];
  for (const name of listFiles(join(dir, 'contextSets'), '.yml', '.yaml')) {
    contextSets.push(...read(`contextSets/${name}`, (t) => parseContextSetFile(t, `contextSets/${name}`, errors), []));
  }

  const dirFile = ['directory.yml', 'directory.yaml'].find((n) => isFile(join(dir, n)));
  const directory = dirFile ? read(dirFile, (t) => parseDirectory(t, dirFile, errors), EMPTY_DIRECTORY) : EMPTY_DIRECTORY;

  const settings = typedSettings(server, errors);
  return Object.freeze({ dir, server, settings, directory, contextSets: Object.freeze(contextSets), meta: Object.freeze(meta) });
}

/**
 * Server scope as typed values; an unknown `tidings.*` key or a value of the wrong type is an error at
 * its line (thrown, or appended to `errors` with the default kept for that key).
 */
export function typedSettings(server: ReadonlyMap<string, SourcedValue>, errors?: ConfigError[]): Settings {
  const fail = (e: ConfigError): void => {
    if (!errors) throw e;
    errors.push(e);
  };
  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(SCHEMA)) out[key] = spec.default;
  for (const [key, sv] of server) {
    const spec = specOf(key);
    if (!spec) {
      if (key.startsWith('tidings.')) fail(new ConfigError(sv.file, sv.line, key, 'unknown key (a typo?)'));
      continue;
    }
    const c = coerce(spec, sv.value);
    if (!c.ok) fail(new ConfigError(sv.file, sv.line, key, `expected ${c.expected}, got '${sv.value}'`));
    else out[key as ConfigKey] = c.value;
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
