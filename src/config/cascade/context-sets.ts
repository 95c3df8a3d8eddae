/**
 * `contextSets/*.yml`: named blocks that apply their property values to every context whose tags
 * match the block's `withTags` expression.
 */
import { isMap, isScalar, isSeq } from 'yaml';
import type { Pair, YAMLMap } from 'yaml';
import { ConfigError } from '../config-error.js';
import { scalarText, YamlSource, yamlTagOf } from '../yaml-source.js';
import type { SourcedValue } from '../sourced.js';
import { TAG_NAME, TagExpressionError, parseTagExpression } from './tag-expression.js';
import type { TagExpr } from './tag-expression.js';

export interface ContextSetBlock {
  /** The block's label; only used in messages and sources. */
  readonly name: string;
  readonly file: string;
  /** Line of the block's name. */
  readonly line: number;
  readonly withTags: string;
  readonly expr: TagExpr;
  readonly addTags: readonly string[];
  readonly values: ReadonlyMap<string, SourcedValue>;
}

function quoteHint(node: unknown): string {
  const tag = yamlTagOf(node);
  return tag !== null ? `; YAML reads the unquoted ${tag} as a tag, so quote the value` : '';
}

/** Maps a column inside a one-line scalar's value onto the file, when the spelling allows it. */
function locateInScalar(y: YamlSource, node: unknown, column: number): { line: number; col: number | null } {
  const fallback = { line: y.lineOf(node) ?? 1, col: null };
  if (!isScalar(node) || !node.range) return fallback;
  const [start, end] = node.range;
  if (y.text.slice(start, end).includes('\n')) return fallback;
  if (node.type === 'PLAIN') return { ...y.posOf(start + column - 1) };
  // Escapes inside quotes can shift columns; exact for the usual unescaped expression.
  if (node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE') return { ...y.posOf(start + column) };
  return fallback;
}

function columnText(col: number | null, exprColumn: number): string {
  return col !== null ? `column ${col}` : `column ${exprColumn} of the expression`;
}

/** Throws the first bad block; given `errors`, appends every bad block's problem there and skips it. */
export function parseContextSetFile(text: string, file: string, errors?: ConfigError[]): ContextSetBlock[] {
  const y = new YamlSource(text, file);
  return y.topPairs('a mapping of named entries').flatMap((pair) => {
    try {
      return [parseBlock(y, pair)];
    } catch (e) {
      if (!errors || !(e instanceof ConfigError)) throw e;
      errors.push(e);
      return [];
    }
  });
}

function parseBlock(y: YamlSource, pair: Pair<unknown, unknown>): ContextSetBlock {
  const name = scalarText(pair.key) ?? '';
  const line = y.lineOf(pair.key) ?? 1;
  const fail = (at: number | null, reason: string): never => {
    throw new ConfigError(y.file, at ?? line, name, `block '${name}': ${reason}`);
  };
  if (name === '') fail(line, 'a block needs a name');
  if (!isMap(pair.value)) fail(y.lineOf(pair.value), 'expected a mapping with withTags and property values');
  const body = pair.value as YAMLMap<unknown, unknown>;

  let withTags: { text: string; expr: TagExpr } | null = null;
  let addTags: string[] = [];
  const values = new Map<string, SourcedValue>();
  for (const item of body.items) {
    const key = scalarText(item.key);
    const keyLine = y.lineOf(item.key) ?? line;
    if (key === null || key === '') fail(keyLine, 'property names must be non-empty scalars');
    if (key === 'withTags') withTags = parseWithTags(y, item.value, fail);
    else if (key === 'addTags') addTags = parseAddTags(y, item.value, fail);
    else {
      const value = scalarText(item.value);
      if (value === null) {
        fail(keyLine, `${key!}: expected a single value${quoteHint(item.value) || ' (write nested keys as one dotted name)'}`);
      }
      values.set(key!, { value: value!, file: y.file, line: keyLine });
    }
  }
  if (withTags === null) fail(line, `has no withTags; every block needs one, e.g. "withTags: premium & beta"`);
  return { name, file: y.file, line, withTags: withTags!.text, expr: withTags!.expr, addTags, values };
}

type Fail = (at: number | null, reason: string) => never;

function parseWithTags(y: YamlSource, node: unknown, fail: Fail): { text: string; expr: TagExpr } {
  const text = scalarText(node);
  if (text === null) return fail(y.lineOf(node), `withTags must be a single expression such as "a & (b | !c)"${quoteHint(node)}`);
  try {
    return { text, expr: parseTagExpression(text) };
  } catch (e) {
    if (!(e instanceof TagExpressionError)) throw e;
    const at = locateInScalar(y, node, e.column);
    // Block scalars may span lines; the message must stay on one.
    return fail(at.line, `invalid withTags "${text.trim().replace(/\s+/g, ' ')}": ${e.reason} at ${columnText(at.col, e.column)}`);
  }
}

function parseAddTags(y: YamlSource, node: unknown, fail: Fail): string[] {
  const tags: string[] = [];
  const check = (tag: string, item: unknown, column: number): void => {
    if (TAG_NAME.test(tag)) { tags.push(tag); return; }
    const at = locateInScalar(y, item, column);
    fail(at.line, `invalid tag "${tag}" in addTags at ${columnText(at.col, column)}; tags use only A-Z a-z 0-9 _ . -`);
  };
  if (isSeq(node)) {
    for (const item of node.items) {
      const tag = scalarText(item);
      if (tag === null) fail(y.lineOf(item) ?? y.lineOf(node), `addTags entries must be tag names${quoteHint(item)}`);
      check(tag!.trim(), item, 1 + tag!.length - tag!.trimStart().length);
    }
    return tags;
  }
  const text = scalarText(node);
  if (text === null) return fail(y.lineOf(node), `addTags must be a comma-separated string or a list of tags${quoteHint(node)}`);
  let offset = 0;
  for (const part of text.split(',')) {
    const tag = part.trim();
    if (tag !== '') check(tag, node, offset + 1 + part.length - part.trimStart().length);
    offset += part.length + 1;
  }
  return tags;
}
