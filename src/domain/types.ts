/** A user is `(userId, contextId)`; in text it is always written `<userId>@<contextId>`. */
export interface UserRef {
  readonly userId: number;
  readonly contextId: number;
}

export type UserKey = string;

export function userKey(u: UserRef): UserKey {
  return `${u.userId}@${u.contextId}`;
}

export function parseUserKey(text: string): UserRef | null {
  const m = /^(\d{1,10})@(\d{1,10})$/.exec(text);
  if (!m) return null;
  const userId = Number(m[1]);
  const contextId = Number(m[2]);
  if (!Number.isSafeInteger(userId) || !Number.isSafeInteger(contextId)) return null;
  return { userId, contextId };
}

/** A publish-side path filter that passed `validatePathFilter` (src/delivery/path-filter.ts). */
export type PathFilter = string & { readonly __checked: 'PathFilter' };

/** What a publisher hands in. `pathFilter` null = every socket of the user. */
export interface Publication {
  readonly user: UserRef;
  readonly name: string;
  readonly args: readonly unknown[];
  readonly namespace: string;
  /** Checked once, where it entered (the type says so): the publisher does not check it again. */
  readonly pathFilter: PathFilter | null;
  readonly sourceToken: string | null;
  /** Idempotency key, already scoped by the caller where it must be. */
  readonly key: string | null;
}

/** An event as it travels to sockets: the publication plus its id. */
export interface PushEvent {
  readonly id: string;
  readonly name: string;
  readonly args: readonly unknown[];
  readonly namespace: string;
}

export type TransportKind = 'websocket' | 'polling' | 'plain-websocket' | 'longpoll' | 'sse';
