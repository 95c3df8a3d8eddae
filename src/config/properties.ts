import { ConfigError } from './config-error.js';

export interface PropertyEntry {
  readonly key: string;
  readonly value: string;
  /** 1-based line where the key's logical line starts. */
  readonly line: number;
}

const ESCAPES: Readonly<Record<string, string>> = { t: '\t', n: '\n', r: '\r', f: '\f' };

const isBlank = (c: string): boolean => c === ' ' || c === '\t' || c === '\f';
const isSeparator = (c: string): boolean => c === '=' || c === ':';
const isTerminator = (c: string): boolean => c === '\n' || c === '\r';

/**
 * Reads `text` as java.util.Properties.load(Reader) does (the JDK 9+ LineReader, load0 and
 * loadConvert), in one pass: natural lines are joined into logical lines and each logical
 * character is fed straight into the key/value splitter and unescaper.
 * The one deliberate difference: a leading byte order mark is dropped (Java keeps it in the key).
 * Entries come in file order, duplicates included; Java lets the last one win.
 */
export function parseProperties(text: string, file: string): PropertyEntry[] {
  const entries: PropertyEntry[] = [];

  // Joining natural lines into a logical line.
  let line = 1; // natural line of the current character
  let startLine = 1;
  let len = 0; // characters in the logical line so far, counted as Java counts them
  let skipWhite = true;
  let continued = false; // the natural line being started continues a logical line
  let skipLF = false;
  let inComment = false;
  let backslash = false; // held back until we know whether it escapes the line terminator

  // Splitting and unescaping the logical line.
  let phase: 'key' | 'separator' | 'value' = 'key';
  let key = '';
  let value = '';
  let hasSeparator = false;
  let escaped = false;
  let hexLeft = 0;
  let code = 0;
  let escapeLine = 0;

  const malformed = (): never => {
    throw new ConfigError(file, escapeLine, phase === 'key' ? null : key, 'malformed \\uXXXX escape (expected 4 hex digits)');
  };

  const append = (s: string): void => {
    if (phase === 'key') key += s;
    else value += s;
  };

  const feed = (c: string): void => {
    if (hexLeft > 0) {
      if (!/[0-9a-fA-F]/.test(c)) malformed();
      code = code * 16 + parseInt(c, 16);
      if (--hexLeft === 0) append(String.fromCharCode(code));
    } else if (escaped) {
      escaped = false;
      if (c === 'u') {
        hexLeft = 4;
        code = 0;
      } else {
        append(ESCAPES[c] ?? c);
      }
    } else if (c === '\\') {
      if (phase === 'separator') phase = 'value';
      escaped = true;
      escapeLine = line;
    } else if (phase === 'key') {
      if (isSeparator(c) || isBlank(c)) {
        phase = 'separator';
        hasSeparator = isSeparator(c);
      } else {
        key += c;
      }
    } else if (phase === 'separator') {
      // Java skips blanks and at most one '=' or ':' between key and value.
      if (isBlank(c)) return;
      if (!hasSeparator && isSeparator(c)) {
        hasSeparator = true;
        return;
      }
      phase = 'value';
      value += c;
    } else {
      value += c;
    }
  };

  const finish = (): void => {
    if (hexLeft > 0) malformed();
    entries.push({ key, value, line: startLine });
    len = 0;
    backslash = false;
    phase = 'key';
    key = '';
    value = '';
    hasSeparator = false;
  };

  let prev = '';
  for (let i = text.charCodeAt(0) === 0xfeff ? 1 : 0; i < text.length; i++) {
    const c = text[i];
    if (prev === '\n' || (prev === '\r' && c !== '\n')) line++;
    prev = c;

    if (inComment) {
      if (isTerminator(c)) {
        inComment = false;
        skipWhite = true;
      }
      continue;
    }
    if (skipLF) {
      skipLF = false;
      if (c === '\n') continue;
    }
    if (skipWhite) {
      if (isBlank(c) || (!continued && isTerminator(c))) continue;
      skipWhite = false;
      continued = false;
    }
    // Java only looks for a comment while the logical line is still empty, so a continuation
    // line starting with '#' is data (unless everything before it was the lone continuation '\').
    if (len === 0 && (c === '#' || c === '!')) {
      inComment = true;
      continue;
    }

    if (!isTerminator(c)) {
      if (len++ === 0) startLine = line;
      if (backslash) {
        backslash = false;
        feed('\\');
        feed(c);
      } else if (c === '\\') {
        backslash = true;
      } else {
        feed(c);
      }
      continue;
    }

    if (len === 0) {
      skipWhite = true;
    } else if (i === text.length - 1) {
      // Java ends the logical line at a terminator that is the last character of the input
      // before checking for a continuation, so a file holding only a backslash and "\n" yields
      // the entry "" = "" (while the same with "\r\n" yields nothing).
      break;
    } else if (backslash) {
      backslash = false;
      len--;
      skipWhite = true;
      continued = true;
      skipLF = c === '\r';
    } else {
      finish();
      skipWhite = true;
    }
  }
  // A trailing backslash at end of input escapes nothing; finish() drops it.
  if (len > 0) finish();
  return entries;
}
