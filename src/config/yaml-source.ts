import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node, type Pair, type YAMLMap } from 'yaml';
import { ConfigError } from './config-error.js';

/**
 * The one YAML reader of the config directory (directory.yml, contextSets/, meta/): a parsed file
 * that can say on which line any node sits, so that every error names file and line.
 */
export class YamlSource {
  readonly file: string;
  readonly text: string;
  readonly root: unknown;
  readonly #lines = new LineCounter();

  constructor(text: string, file: string) {
    this.file = file;
    this.text = text;
    const doc = parseDocument(text, { lineCounter: this.#lines, prettyErrors: false, uniqueKeys: true });
    const err = doc.errors[0];
    if (err) {
      // yaml's message may carry a multi-line excerpt; the error is one line.
      const line = this.posOf(err.pos[0]).line;
      const reason = err.message.split('\n')[0];
      // `withTags: !a & b` is an easy slip: YAML reads the leading `!`/`&` as a tag or anchor.
      const hint = /:\s*[!&*]/.test(text.split(/\r?\n/)[line - 1] ?? '') ? '; quote values that start with !, & or *' : '';
      throw new ConfigError(file, line, null, `invalid YAML: ${reason}${hint}`);
    }
    this.root = doc.contents;
  }

  posOf(offset: number): { line: number; col: number } {
    return this.#lines.linePos(offset);
  }

  lineOf(node: unknown): number | null {
    const range = (node as Node | null | undefined)?.range;
    return range ? this.posOf(range[0]).line : null;
  }

  error(node: unknown, key: string | null, reason: string): ConfigError {
    return new ConfigError(this.file, this.lineOf(node), key, reason);
  }

  /** The top-level mapping's pairs (none for an empty file), for files of named entries. */
  topPairs(what: string): Pair<unknown, unknown>[] {
    const c = this.root;
    if (c === null || c === undefined || (isScalar(c) && c.value === null)) return [];
    if (!isMap(c)) throw this.error(c, null, `expected ${what} at the top level`);
    return (c as YAMLMap<unknown, unknown>).items;
  }

  /** The pairs of a mapping node, or an error naming what was expected. */
  pairs(node: unknown, what: string, key: string | null = null): Pair[] {
    if (node === null || node === undefined) return [];
    if (!isMap(node)) throw this.error(node, key, `${what} must be a mapping`);
    return (node as YAMLMap).items as Pair[];
  }

  scalarText(node: unknown, key: string, what: string): string {
    const text = scalarText(node);
    if (text === null || (isScalar(node) && node.value === null)) throw this.error(node, key, `${what} must be a plain value`);
    return text;
  }

  intValue(node: unknown, key: string, what: string): number {
    if (!isScalar(node) || typeof node.value !== 'number' || !Number.isSafeInteger(node.value) || node.value < 0) {
      throw this.error(node, key, `${what} must be a non-negative integer`);
    }
    return node.value;
  }

  stringList(node: unknown, key: string, what: string): string[] {
    if (node === null || node === undefined) return [];
    if (isSeq(node)) return node.items.map((n) => this.scalarText(n, key, what));
    return this.scalarText(node, key, what).split(',').map((s) => s.trim()).filter(Boolean);
  }
}

export function keyText(pair: Pair): string {
  return isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
}

/**
 * The text of a scalar as the operator meant it: strings as parsed, numbers and booleans as written
 * (so `0012`, `1e3` or a 20-digit token keep their spelling instead of going through a float).
 * Null for anything but a plain scalar.
 */
export function scalarText(node: unknown): string | null {
  if (!isScalar(node) || (node.value !== null && typeof node.value === 'object')) return null;
  // An unquoted `!beta` is a YAML tag, not text; callers report it through yamlTagOf.
  if (yamlTagOf(node) !== null) return null;
  if (typeof node.value === 'string') return node.value;
  return node.source ?? String(node.value ?? '');
}

/** The custom YAML tag on a node (`!beta` in `withTags: !beta`), which always means a missing quote here. */
export function yamlTagOf(node: unknown): string | null {
  return isScalar(node) && node.tag !== undefined && !node.tag.startsWith('tag:yaml.org,2002:') ? node.tag : null;
}
