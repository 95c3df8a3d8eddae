/** A raw config value and where it was written, so every problem and every `config get` can point at it. */
export interface SourcedValue {
  readonly value: string;
  /** Path relative to the config directory, or `env:NAME`, or `store`. */
  readonly file: string;
  /** 1-based line, null for env and store values. */
  readonly line: number | null;
}

export function describeSource(s: SourcedValue): string {
  return s.line === null ? s.file : `${s.file}:${s.line}`;
}
