/** A configuration problem, always located: which file, which line, which key. */
export class ConfigError extends Error {
  readonly file: string;
  readonly line: number | null;
  readonly key: string | null;
  readonly reason: string;

  constructor(file: string, line: number | null, key: string | null, reason: string) {
    super(`${file}${line !== null ? `:${line}` : ''}${key !== null ? `: ${key}` : ''}: ${reason}`);
    this.name = 'ConfigError';
    this.file = file;
    this.line = line;
    this.key = key;
    this.reason = reason;
  }
}
