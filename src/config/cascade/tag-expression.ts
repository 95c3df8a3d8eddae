/**
 * `withTags` expressions of context sets: tag names combined with `!`, `&`, `|` and parentheses,
 * binding in that order (`a | b & !c` is `a | (b & (!c))`).
 */
export type TagExpr =
  | { readonly kind: 'tag'; readonly name: string }
  | { readonly kind: 'not'; readonly expr: TagExpr }
  | { readonly kind: 'and'; readonly terms: readonly TagExpr[] }
  | { readonly kind: 'or'; readonly terms: readonly TagExpr[] };

/** A syntax error; `column` is 1-based within the expression text so callers can map it onto the file. */
export class TagExpressionError extends Error {
  readonly column: number;
  readonly reason: string;

  constructor(column: number, reason: string) {
    super(`${reason} (column ${column})`);
    this.name = 'TagExpressionError';
    this.column = column;
    this.reason = reason;
  }
}

// A context id is a tag too, so pure digits are a valid name.
const TAG_CHAR = /[A-Za-z0-9_.\-]/;
export const TAG_NAME = /^[A-Za-z0-9_.\-]+$/;

interface Token {
  readonly kind: 'tag' | '!' | '&' | '|' | '(' | ')' | 'end';
  readonly text: string;
  readonly column: number;
}

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') { i++; continue; }
    if (c === '!' || c === '&' || c === '|' || c === '(' || c === ')') {
      tokens.push({ kind: c, text: c, column: i + 1 });
      i++;
      continue;
    }
    if (TAG_CHAR.test(c)) {
      const start = i;
      while (i < text.length && TAG_CHAR.test(text[i])) i++;
      tokens.push({ kind: 'tag', text: text.slice(start, i), column: start + 1 });
      continue;
    }
    throw new TagExpressionError(i + 1, `unexpected character '${c}'`);
  }
  tokens.push({ kind: 'end', text: '', column: text.length + 1 });
  return tokens;
}

function describe(t: Token): string {
  return t.kind === 'end' ? 'end of expression' : `'${t.text}'`;
}

/** Recursive descent; the grammar is small enough that a table-driven parser would only hide it. */
class Parser {
  private pos = 0;
  constructor(private readonly tokens: Token[]) {}

  parse(): TagExpr {
    if (this.peek().kind === 'end') throw new TagExpressionError(1, 'empty expression');
    const expr = this.or();
    const t = this.peek();
    if (t.kind === ')') throw new TagExpressionError(t.column, "unbalanced ')' without matching '('");
    if (t.kind !== 'end') throw new TagExpressionError(t.column, `expected '&', '|' or end of expression, found ${describe(t)}`);
    return expr;
  }

  private peek(): Token {
    return this.tokens[this.pos];
  }

  private or(): TagExpr {
    const terms = [this.and()];
    while (this.peek().kind === '|') {
      this.pos++;
      terms.push(this.and());
    }
    return terms.length === 1 ? terms[0] : { kind: 'or', terms };
  }

  private and(): TagExpr {
    const terms = [this.unary()];
    while (this.peek().kind === '&') {
      this.pos++;
      terms.push(this.unary());
    }
    return terms.length === 1 ? terms[0] : { kind: 'and', terms };
  }

  private unary(): TagExpr {
    const t = this.peek();
    if (t.kind === '!') {
      this.pos++;
      return { kind: 'not', expr: this.unary() };
    }
    if (t.kind === 'tag') {
      this.pos++;
      return { kind: 'tag', name: t.text };
    }
    if (t.kind === '(') {
      this.pos++;
      const inner = this.or();
      const close = this.peek();
      if (close.kind !== ')') {
        if (close.kind === 'end') throw new TagExpressionError(t.column, "unbalanced '(' is never closed");
        throw new TagExpressionError(close.column, `expected ')' or an operator, found ${describe(close)}`);
      }
      this.pos++;
      return inner;
    }
    throw new TagExpressionError(t.column, `expected a tag name, '!' or '(', found ${describe(t)}`);
  }
}

export function parseTagExpression(text: string): TagExpr {
  return new Parser(tokenize(text)).parse();
}

export function evaluate(expr: TagExpr, tags: ReadonlySet<string>): boolean {
  switch (expr.kind) {
    case 'tag':
      return tags.has(expr.name);
    case 'not':
      return !evaluate(expr.expr, tags);
    case 'and':
      for (const t of expr.terms) if (!evaluate(t, tags)) return false;
      return true;
    case 'or':
      for (const t of expr.terms) if (evaluate(t, tags)) return true;
      return false;
  }
}

/** Tag names an expression mentions; only these can change whether it matches. */
export function tagNamesOf(expr: TagExpr, into = new Set<string>()): Set<string> {
  if (expr.kind === 'tag') into.add(expr.name);
  else if (expr.kind === 'not') tagNamesOf(expr.expr, into);
  else for (const t of expr.terms) tagNamesOf(t, into);
  return into;
}

/**
 * `evaluate` over a bit set (bit `bitOf(name)` set = tag present), as a closure tree. The resolver
 * tests every block against every context at each rebuild; this is several times faster than Set lookups.
 */
export function compileBits(expr: TagExpr, bitOf: (name: string) => number): (bits: Uint32Array) => boolean {
  switch (expr.kind) {
    case 'tag': {
      const bit = bitOf(expr.name);
      const word = bit >>> 5;
      const mask = 1 << (bit & 31);
      return (bits) => (bits[word] & mask) !== 0;
    }
    case 'not': {
      const inner = compileBits(expr.expr, bitOf);
      return (bits) => !inner(bits);
    }
    case 'and': {
      const terms = expr.terms.map((t) => compileBits(t, bitOf));
      if (terms.length === 2) {
        const [a, b] = terms;
        return (bits) => a(bits) && b(bits);
      }
      return (bits) => terms.every((t) => t(bits));
    }
    case 'or': {
      const terms = expr.terms.map((t) => compileBits(t, bitOf));
      if (terms.length === 2) {
        const [a, b] = terms;
        return (bits) => a(bits) || b(bits);
      }
      return (bits) => terms.some((t) => t(bits));
    }
  }
}
