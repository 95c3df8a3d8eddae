import type { Lifecycle } from './lifecycle.js';
import type { TransportKind, UserKey } from '../domain/types.js';

export interface ConnectionEntry {
  readonly connectionId: string;
  readonly nodeId: string;
  readonly sessionId: string;
  readonly transport: TransportKind;
  readonly path: string;
}

export type AdmitResult =
  | { readonly ok: true; readonly count: number }
  | { readonly ok: false; readonly reason: 'cap' | 'duplicate'; readonly count: number };

export interface NodeInfo {
  readonly nodeId: string;
  /** Epoch ms of the last heartbeat. */
  readonly lastSeen: number;
  readonly connections: number;
  readonly byTransport: Readonly<Record<string, number>>;
  /** Where other nodes reach this one (`tidings.cluster.advertiseUrl`); empty until it listens. */
  readonly advertiseUrl: string;
}

/**
 * Cluster-wide: which nodes hold connections of a user, and how many the user has.
 * Guarantees: `admit` is atomic (the per-user cap and the duplicate-id check cannot be
 * raced past by two nodes at once); entries of a node whose liveness lapsed are never
 * returned by `nodesFor` and are cleaned up by the survivors.
 */
export interface ConnectionRegistry extends Lifecycle {
  /** Admits the connection unless the user already has `cap` or one with the same id. */
  admit(user: UserKey, entry: ConnectionEntry, cap: number): Promise<AdmitResult>;
  remove(user: UserKey, connectionId: string): Promise<void>;
  /** Live nodes (this one included) holding at least one connection of the user. */
  nodesFor(user: UserKey): Promise<string[]>;
  countFor(user: UserKey): Promise<number>;
  /**
   * Optional: the idempotency check and `nodesFor` in one round trip (the publish hot path).
   * `fresh` is false when `dedupeKey` was seen within `ttlMs`; then `nodes` is empty.
   */
  nodesForWithDedupe?(user: UserKey, dedupeKey: string | null, ttlMs: number): Promise<{ fresh: boolean; nodes: string[] }>;
  /** Live cluster members with their connection counts. */
  members(): Promise<NodeInfo[]>;
  /**
   * False while this node's own entries may be missing from the shared registry: its connection
   * to the store dropped, and it has not re-registered since. Other nodes would not deliver to
   * it then, so the node is not ready.
   */
  registered(): boolean;
}
