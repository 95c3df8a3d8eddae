/**
 * `meta/*.yml`: per-key metadata as in the reference deployment, e.g.
 *   com.openexchange.websockets.enabled: { final: context, value: "true" }
 * `final` pins the key at a scope; `value` replaces the server value from the .properties files.
 */
import { isMap } from 'yaml';
import type { Pair, YAMLMap } from 'yaml';
import { ConfigError } from '../config-error.js';
import type { SourcedValue } from '../sourced.js';
import { scalarText, YamlSource, yamlTagOf } from '../yaml-source.js';

export type FinalScope = 'user' | 'context' | 'contextSets' | 'server';
export const FINAL_SCOPES: readonly FinalScope[] = ['user', 'context', 'contextSets', 'server'];

export interface MetaEntry {
  readonly key: string;
  readonly file: string;
  readonly line: number;
  readonly final: FinalScope | null;
  readonly value: SourcedValue | null;
}

// Reference-deployment metadata that means nothing here but should not break a copied file.
const IGNORED = new Set(['protected', 'preferencePath']);

/** Throws the first bad entry; given `errors`, appends every bad entry's problem there and skips it. */
export function parseMetaFile(text: string, file: string, errors?: ConfigError[]): MetaEntry[] {
  const y = new YamlSource(text, file);
  return y.topPairs('a mapping of named entries').flatMap((pair) => {
    try {
      return [parseEntry(y, file, pair)];
    } catch (e) {
      if (!errors || !(e instanceof ConfigError)) throw e;
      errors.push(e);
      return [];
    }
  });
}

/**
 * Puts meta `value`s into the server scope: one replaces the .properties value (reference behaviour),
 * but a value from the environment still wins. The one place this precedence is applied; the
 * resolver reads the server scope as it comes. The first entry of a key counts (a second one is
 * reported by validateCascadeInput).
 */
export function applyMetaValues(server: Map<string, SourcedValue>, meta: readonly MetaEntry[]): void {
  const seen = new Set<string>();
  for (const m of meta) {
    if (seen.has(m.key)) continue;
    seen.add(m.key);
    if (m.value !== null && !server.get(m.key)?.file.startsWith('env:')) server.set(m.key, m.value);
  }
}

function parseEntry(y: YamlSource, file: string, pair: Pair<unknown, unknown>): MetaEntry {
  const key = scalarText(pair.key) ?? '';
  const line = y.lineOf(pair.key) ?? 1;
  if (key === '') throw new ConfigError(file, line, null, 'a metadata entry needs a property name');
  if (!isMap(pair.value)) throw new ConfigError(file, line, key, 'expected a mapping such as {final: context}');
  let final: FinalScope | null = null;
  let value: SourcedValue | null = null;
  for (const item of (pair.value as YAMLMap<unknown, unknown>).items) {
    const attr = scalarText(item.key) ?? '';
    const at = y.lineOf(item.value) ?? y.lineOf(item.key) ?? line;
    const text = scalarText(item.value);
    if (attr === 'final') {
      if (text === null || !(FINAL_SCOPES as readonly string[]).includes(text)) {
        throw new ConfigError(file, at, key, `unknown scope '${text ?? '?'}' for final; expected one of ${FINAL_SCOPES.join(', ')}`);
      }
      final = text as FinalScope;
    } else if (attr === 'value') {
      if (text === null) throw new ConfigError(file, at, key, `value must be a single value${yamlTagOf(item.value) !== null ? '; quote it' : ''}`);
      value = { value: text, file, line: at };
    } else if (!IGNORED.has(attr)) {
      throw new ConfigError(file, y.lineOf(item.key) ?? line, key, `unknown metadata '${attr}'; expected final or value`);
    }
  }
  return { key, file, line, final, value };
}
