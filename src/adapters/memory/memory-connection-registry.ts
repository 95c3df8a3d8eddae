import type { AdmitResult, ConnectionEntry, ConnectionRegistry, NodeInfo } from '../../ports/connection-registry.js';
import type { TransportKind, UserKey } from '../../domain/types.js';

/**
 * Registry for one process. Several in-process nodes may share one `MemoryRegistryWorld`
 * (used by the contract suite and by in-process multi-node tests); nodes in it never die.
 */
export class MemoryRegistryWorld {
  readonly users = new Map<UserKey, Map<string, ConnectionEntry>>();
  readonly nodes = new Set<string>();

  nodesFor(user: UserKey): string[] {
    const conns = this.users.get(user);
    if (!conns) return [];
    return [...new Set([...conns.values()].map((e) => e.nodeId))];
  }
}

export class MemoryConnectionRegistry implements ConnectionRegistry {
  readonly #world: MemoryRegistryWorld;
  readonly #nodeId: string;

  constructor(nodeId: string, world: MemoryRegistryWorld = new MemoryRegistryWorld()) {
    this.#nodeId = nodeId;
    this.#world = world;
  }

  async start(): Promise<void> {
    this.#world.nodes.add(this.#nodeId);
  }

  async stop(): Promise<void> {
    this.#world.nodes.delete(this.#nodeId);
    for (const [user, conns] of this.#world.users) {
      for (const [id, e] of conns) if (e.nodeId === this.#nodeId) conns.delete(id);
      if (conns.size === 0) this.#world.users.delete(user);
    }
  }

  async admit(user: UserKey, entry: ConnectionEntry, cap: number): Promise<AdmitResult> {
    let conns = this.#world.users.get(user);
    const count = conns?.size ?? 0;
    if (conns?.has(entry.connectionId)) return { ok: false, reason: 'duplicate', count };
    if (count >= cap) return { ok: false, reason: 'cap', count };
    if (!conns) this.#world.users.set(user, (conns = new Map()));
    conns.set(entry.connectionId, entry);
    return { ok: true, count: count + 1 };
  }

  async remove(user: UserKey, connectionId: string): Promise<void> {
    const conns = this.#world.users.get(user);
    if (!conns) return;
    conns.delete(connectionId);
    if (conns.size === 0) this.#world.users.delete(user);
  }

  async setTransport(user: UserKey, connectionId: string, transport: TransportKind): Promise<void> {
    const conns = this.#world.users.get(user);
    const e = conns?.get(connectionId);
    if (conns && e) conns.set(connectionId, { ...e, transport });
  }

  async countFor(user: UserKey): Promise<number> {
    return this.#world.users.get(user)?.size ?? 0;
  }

  /** One process: nothing can drop this node's entries behind its back. */
  registered(): boolean {
    return true;
  }

  async members(): Promise<NodeInfo[]> {
    const now = Date.now();
    return [...this.#world.nodes].sort().map((nodeId) => {
      const byTransport: Record<string, number> = {};
      let connections = 0;
      for (const conns of this.#world.users.values()) {
        for (const e of conns.values()) {
          if (e.nodeId !== nodeId) continue;
          connections++;
          byTransport[e.transport] = (byTransport[e.transport] ?? 0) + 1;
        }
      }
      // One process: no node is reached over the network.
      return { nodeId, lastSeen: now, connections, byTransport, advertiseUrl: '' };
    });
  }
}
