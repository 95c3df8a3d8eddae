import type { SourcedValue } from '../config/sourced.js';
import type { UserKey } from '../domain/types.js';

export interface DirContext {
  readonly id: number;
  readonly name: string;
  readonly tags: readonly string[];
  readonly config: ReadonlyMap<string, SourcedValue>;
}

export interface DirUser {
  readonly id: number;
  readonly contextId: number;
  readonly key: UserKey;
  readonly login: string;
  /** Scheme-prefixed hash, e.g. `{ARGON2ID}$argon2id$…`. */
  readonly password: string;
  readonly mailEnabled: boolean;
  readonly config: ReadonlyMap<string, SourcedValue>;
}

/** Contexts and users of the embedded directory (`directory.yml`), immutable once loaded. */
export interface Directory {
  readonly contexts: ReadonlyMap<number, DirContext>;
  readonly users: ReadonlyMap<UserKey, DirUser>;
  /** By login, lower-cased: Dovecot lower-cases logins before it sends them. */
  readonly byLogin: ReadonlyMap<string, DirUser>;
}
