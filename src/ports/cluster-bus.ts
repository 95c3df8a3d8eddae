import type { Lifecycle } from './lifecycle.js';

/** Messages between nodes. Payloads are plain JSON; `src/adapters/bus-codec.ts` is their one codec. */
export type BusMessage =
  | { readonly type: 'deliver'; readonly from: string; readonly batch: readonly RemoteBatchItem[] }
  | { readonly type: 'session-ended'; readonly from: string; readonly sessionId: string }
  | { readonly type: 'config-changed'; readonly from: string; readonly reason: string }
  | { readonly type: 'reload'; readonly from: string };

/** One coalesced remote delivery: every payload for one (user, pathFilter), in publish order. */
export interface RemoteBatchItem {
  readonly user: string;
  readonly pathFilter: string | null;
  readonly sourceTokens: readonly (string | null)[];
  /** Serialized PushEvent JSON texts, same length and order as sourceTokens. */
  readonly payloads: readonly string[];
}

/**
 * Node-addressed and broadcast messaging. `sendToNode` must not lose a message when the
 * receiving node is briefly disconnected (a per-node inbox); `broadcast` is best-effort
 * and reaches every live node, the sender included. Every message is encoded and decoded by
 * the one codec, so both implementations hand handlers only well-formed messages of a known
 * type; a handler that throws costs only that message.
 */
export interface ClusterBus extends Lifecycle {
  readonly nodeId: string;
  sendToNode(nodeId: string, message: BusMessage): Promise<void>;
  broadcast(message: BusMessage): Promise<void>;
  onMessage(handler: (message: BusMessage) => void): void;
  /** True when a message through this node's own inbox comes back within `timeoutMs` (readiness). */
  selfCheck(timeoutMs: number): Promise<boolean>;
}
