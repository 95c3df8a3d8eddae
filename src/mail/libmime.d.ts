// libmime 5 ships no typings; only what tidings calls is declared here.
declare module 'libmime' {
  interface Libmime {
    /** Decodes every RFC 2047 encoded-word in `str`; whitespace between adjacent words is dropped. */
    decodeWords(str: string): string;
    /** Decodes the text of one encoded-word (`encoding` is `B` or `Q`). */
    decodeWord(charset: string, encoding: string, str: string): string;
  }
  const libmime: Libmime;
  export = libmime;
}

declare module 'libmime/lib/charset.js' {
  const charset: {
    /** Maps aliases (`latin1`, `win-1252`, `utf8`) to the names libmime hands to iconv-lite. */
    normalizeCharset(charset: string): string;
  };
  export = charset;
}
