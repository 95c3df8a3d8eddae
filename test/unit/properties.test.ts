import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseProperties } from '../../src/config/properties.js';
import { ConfigError } from '../../src/config/config-error.js';

// Inputs are ordinary string literals, so '\\' is ONE backslash in the file and '\n' is a real
// line feed. Expected results follow java.util.Properties.load(Reader) (JDK 9+).

type Row = readonly [name: string, text: string, want: ReadonlyArray<readonly [key: string, value: string, line: number]>];

const FILE = 'test.properties';

const rows: Row[] = [
  // separators
  ['key=value', 'key=value', [['key', 'value', 1]]],
  ['whitespace separator', 'key value', [['key', 'value', 1]]],
  ['spaces around =', 'key = value', [['key', 'value', 1]]],
  ['colon separator', 'key:value', [['key', 'value', 1]]],
  ['spaces around :', 'key   :   value', [['key', 'value', 1]]],
  ['tabs around :', 'key\t:\tvalue', [['key', 'value', 1]]],
  ['form feeds as separator', 'key\f\fvalue', [['key', 'value', 1]]],
  ['key alone', 'key', [['key', '', 1]]],
  ['key with = and nothing after', 'key=', [['key', '', 1]]],
  ['key followed by blanks only', 'key   ', [['key', '', 1]]],
  ['key:=value keeps the second separator', 'key:=value', [['key', '=value', 1]]],
  ['only one = is skipped after blanks', 'key = = v', [['key', '= v', 1]]],
  ['whitespace separator then = inside value', 'key value=more', [['key', 'value=more', 1]]],
  ['separators inside the value', 'url=http://x:80/?a=b', [['url', 'http://x:80/?a=b', 1]]],
  ['empty key with =', '=value', [['', 'value', 1]]],
  ['lone colon', ':', [['', '', 1]]],
  ['leading whitespace before the key', '   \t\f key=v', [['key', 'v', 1]]],

  // escapes in keys
  ['escaped = in key', 'a\\=b=c', [['a=b', 'c', 1]]],
  ['escaped space in key', 'a\\ b=c', [['a b', 'c', 1]]],
  ['escaped : in key, whitespace separator', 'a\\:b c', [['a:b', 'c', 1]]],
  ['escaped leading space in key', '\\ key=v', [[' key', 'v', 1]]],
  ['escaped backslash ends key before =', 'key\\\\=v', [['key\\', 'v', 1]]],
  ['escaped # at key start is not a comment', '\\#notcomment=1', [['#notcomment', '1', 1]]],
  ['escaped ! at key start is not a comment', '\\!bang=1', [['!bang', '1', 1]]],

  // comments and blank lines
  ['comments with # and !, indented too', '# c1\n! c2\n   # indented\n\t! tab\nk=v', [['k', 'v', 5]]],
  ['# after a value is data', 'k=v # not a comment', [['k', 'v # not a comment', 1]]],
  ['blank and whitespace-only lines', '\n   \n\t\f\nk=v\n\n', [['k', 'v', 4]]],
  ['comment at end of file without newline', 'k=v\n# trailing', [['k', 'v', 1]]],
  ['only comments and blanks', '# a\n\n! b\n   \n', []],
  ['empty text', '', []],

  // values
  ['escaped leading space in value', 'a = \\ b', [['a', ' b', 1]]],
  ['trailing whitespace of value is kept', 'a=b  \t', [['a', 'b  \t', 1]]],
  ['\\t \\n \\r \\f escapes', 'k=a\\tb\\nc\\rd\\fe', [['k', 'a\tb\nc\rd\fe', 1]]],
  ['any other escaped char is itself', 'k=\\b\\q\\"\\\\', [['k', 'bq"\\', 1]]],
  ['non-ASCII text passes through', 'ключ = значение', [['ключ', 'значение', 1]]],
  ['duplicate keys are all returned', 'a=1\na=2', [['a', '1', 1], ['a', '2', 2]]],

  // continuation lines
  ['continuation drops leading whitespace', 'a=b\\\n    c\nd=e', [['a', 'bc', 1], ['d', 'e', 3]]],
  [
    'continuation spanning 3 lines',
    'fruits apple, \\\n   banana, \\\n   pear\nnext=1',
    [['fruits', 'apple, banana, pear', 1], ['next', '1', 4]],
  ],
  ['continuation inside the key', 'ke\\\n  y=v', [['key', 'v', 1]]],
  ['even number of backslashes is no continuation', 'a=b\\\\\nc=d', [['a', 'b\\', 1], ['c', 'd', 2]]],
  ['three backslashes: escaped backslash plus continuation', 'a=b\\\\\\\n c', [['a', 'b\\c', 1]]],
  ['comment line ending in \\ is not continued (#)', '# c \\\nk=v', [['k', 'v', 2]]],
  ['comment line ending in \\ is not continued (!)', '! c \\\nk=v', [['k', 'v', 2]]],
  ['continuation line starting with # is data', 'a=1\\\n#2', [['a', '1#2', 1]]],
  ['continuation line starting with indented ! is data', 'a=1\\\n   !2', [['a', '1!2', 1]]],
  ['empty continuation line ends the logical line', 'a=b\\\n\nc=d', [['a', 'b', 1], ['c', 'd', 3]]],
  ['whitespace-only continuation line ends it too', 'a=b\\\n  \t\nc=d', [['a', 'b', 1], ['c', 'd', 3]]],
  ['\\u escape split by a continuation', 'a=\\u00\\\n   41', [['a', 'A', 1]]],

  // line terminators
  [
    'CRLF file',
    '# c\r\na=1\r\nb = 2 \r\n\r\nc:3\r\n',
    [['a', '1', 2], ['b', '2 ', 3], ['c', '3', 5]],
  ],
  ['CRLF continuation', 'a=x\\\r\n   y\\\r\n   z\r\nb=2', [['a', 'xyz', 1], ['b', '2', 4]]],
  ['CR-only file', 'a=1\rb=2\r\rc=3', [['a', '1', 1], ['b', '2', 2], ['c', '3', 4]]],
  ['CR-only continuation', 'a=x\\\r  y\rb=1', [['a', 'xy', 1], ['b', '1', 3]]],
  ['mixed terminators', 'a=1\nb=2\r\nc=3\rd=4', [['a', '1', 1], ['b', '2', 2], ['c', '3', 3], ['d', '4', 4]]],
  ['LF CR is two line ends', 'a=1\n\rb=2', [['a', '1', 1], ['b', '2', 3]]],

  // unicode escapes
  ['\\u escapes in key and value, either hex case', '\\u0041\\u00e9=\\u00E9t\\u00e9', [['Aé', 'été', 1]]],
  ['non-BMP character from a surrogate pair', 'emoji=\\uD83D\\uDE00', [['emoji', '\u{1F600}', 1]]],
  ['lone surrogate is kept as Java keeps it', 'x=\\uD800', [['x', '\uD800', 1]]],
  ['\\u-escaped separators are plain characters', '\\u003d=\\u003a', [['=', ':', 1]]],
  ['\\u0020 in key does not end the key', 'a\\u0020b=c', [['a b', 'c', 1]]],

  // BOM and end of file
  ['BOM at the start is dropped', '\uFEFFkey=v', [['key', 'v', 1]]],
  ['BOM elsewhere is kept', 'a=\uFEFF', [['a', '\uFEFF', 1]]],
  ['trailing backslash at end of file', 'a=b\\', [['a', 'b', 1]]],
  ['trailing backslash and LF at end of file', 'a=b\\\n', [['a', 'b', 1]]],
  ['trailing backslash and CRLF at end of file', 'a=b\\\r\n', [['a', 'b', 1]]],
  ['file that is only a backslash', '\\', [['', '', 1]]],
  // Java's LineReader checks for end of input before continuing at LF, but a CR continues first.
  ['lone backslash and LF at end of file', '\\\n', [['', '', 1]]],
  ['lone backslash and CRLF at end of file', '\\\r\n', []],
  // The lone '\' vanishes, so Java still sees an empty logical line and '#' starts a comment;
  // the entry's line is where its first character is.
  ['lone backslash line then # line is a comment', '\\\n#c=1\nk=v', [['k', 'v', 3]]],
  ['lone backslash line then data', '  \\\n  k=v', [['k', 'v', 2]]],
];

type ErrorRow = readonly [name: string, text: string, line: number, key: string | null];

const errorRows: ErrorRow[] = [
  ['short \\u at end of value', 'a=\\u12', 1, 'a'],
  ['non-hex digit in value', 'a=\\u12G4', 1, 'a'],
  ['\\u with nothing after it', 'k=\\u', 1, 'k'],
  ['non-hex digit in key', '\\u00zz=1', 1, null],
  ['separator inside a key escape', '\\u12=x', 1, null],
  ['blank inside a key escape', 'a\\u00 b=c', 1, null],
  ['short escape in key with no value', 'abc\\u12', 1, null],
  ['key name is the unescaped key', '\\u0041=\\u00', 1, 'A'],
  ['short escape after a whitespace separator', 'k \\u004', 1, 'k'],
  ['line counts comments and blank lines', '# c\n\nk=\\uXYZW', 3, 'k'],
  ['line is where the escape is in a continued value', 'k=ok \\\n  then \\u12', 2, 'k'],
  ['CRLF line counting', 'a=1\r\nb=\\u12\r\n', 2, 'b'],
];

describe('parseProperties', () => {
  for (const [name, text, want] of rows) {
    it(name, () => {
      const got = parseProperties(text, FILE);
      assert.deepEqual(
        got,
        want.map(([key, value, line]) => ({ key, value, line })),
      );
    });
  }

  describe('malformed \\u escapes throw ConfigError', () => {
    for (const [name, text, line, key] of errorRows) {
      it(name, () => {
        assert.throws(
          () => parseProperties(text, FILE),
          (err: unknown) => {
            assert.ok(err instanceof ConfigError);
            assert.equal(err.file, FILE);
            assert.equal(err.line, line);
            assert.equal(err.key, key);
            assert.match(err.message, new RegExp(`^${FILE.replace('.', '\\.')}:${line}`));
            return true;
          },
        );
      });
    }
  });
});
