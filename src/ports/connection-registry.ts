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
 * Cluster-wide: the connections of every user, and which nodes are members. Which nodes hold a
 * user is asked at publish time, through `PublishLookup`, from the same entries.
 * Guarantees: `admit` is atomic (the per-user cap and the duplicate-id check cannot be
 * raced past by two nodes at once); entries of a node whose liveness lapsed never count and
 * are cleaned up by the survivors.
 */
export interface ConnectionRegistry extends Lifecycle {
  /** Admits the connection unless the user already has `cap` or one with the same id. */
  admit(user: UserKey, entry: ConnectionEntry, cap: number): Promise<AdmitResult>;
  remove(user: UserKey, connectionId: string): Promise<void>;
  /** The connection now runs on `transport` (a Socket.IO upgrade); nothing happens if it is gone. */
  setTransport(user: UserKey, connectionId: string, transport: TransportKind): Promise<void>;
  countFor(user: UserKey): Promise<number>;
  /** Live cluster members with their connection counts. */
  members(): Promise<NodeInfo[]>;
  /**
   * False while this node's own entries may be missing from the shared registry: its connection
   * to the store dropped, and it has not re-registered since. Other nodes would not deliver to
   * it then, so the node is not ready.
   */
  registered(): boolean;
}
