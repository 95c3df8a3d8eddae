import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node, type Pair, type YAMLMap } from 'yaml';
import { ConfigError } from './config-error.js';

/** A parsed YAML file that can say on which line any node sits, so errors can point at it. */
export class YamlSource {
  readonly file: string;
  readonly root: unknown;
  readonly #lines = new LineCounter();

  constructor(text: string, file: string) {
    this.file = file;
    const doc = parseDocument(text, { lineCounter: this.#lines, uniqueKeys: true });
    const err = doc.errors[0];
    if (err) {
      const pos = err.linePos?.[0];
      throw new ConfigError(file, pos?.line ?? null, null, `YAML syntax error${pos ? ` at column ${pos.col}` : ''}: ${err.message.split('\n')[0]}`);
    }
    this.root = doc.contents;
  }

  lineOf(node: unknown): number | null {
    const range = (node as Node | null | undefined)?.range;
    return range ? this.#lines.linePos(range[0]).line : null;
  }

  error(node: unknown, key: string | null, reason: string): ConfigError {
    return new ConfigError(this.file, this.lineOf(node), key, reason);
  }

  /** The pairs of a mapping node, or an error naming what was expected. */
  pairs(node: unknown, what: string, key: string | null = null): Pair[] {
    if (node === null || node === undefined) return [];
    if (!isMap(node)) throw this.error(node, key, `${what} must be a mapping`);
    return (node as YAMLMap).items as Pair[];
  }

  scalarText(node: unknown, key: string, what: string): string {
    if (!isScalar(node) || node.value === null || typeof node.value === 'object') throw this.error(node, key, `${what} must be a plain value`);
    return String(node.value);
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
