import type { Lifecycle } from './lifecycle.js';

/** A run-time config value at context scope (userId null) or user scope. */
export interface StoredValue {
  readonly contextId: number;
  readonly userId: number | null;
  readonly key: string;
  readonly value: string;
}

/**
 * Run-time context- and user-scope values set by `tidings config set` or the admin API.
 * They win over directory.yml at the same scope. Changes are announced on the cluster bus
 * by the caller, not by the store.
 */
export interface ConfigStore extends Lifecycle {
  all(): Promise<StoredValue[]>;
  set(v: StoredValue): Promise<void>;
  /** True when a value was removed. */
  unset(contextId: number, userId: number | null, key: string): Promise<boolean>;
}
