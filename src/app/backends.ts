import { EventEmitter } from 'node:events';
import { MemoryClusterBus } from '../adapters/memory/memory-cluster-bus.js';
import { MemoryConfigStore } from '../adapters/memory/memory-config-store.js';
import { MemoryConnectionRegistry, MemoryRegistryWorld } from '../adapters/memory/memory-connection-registry.js';
import { MemoryDedupeStore } from '../adapters/memory/memory-dedupe-store.js';
import { MemorySessionStore } from '../adapters/memory/memory-session-store.js';
import type { ClusterBus } from '../ports/cluster-bus.js';
import type { ConfigStore } from '../ports/config-store.js';
import type { ConnectionRegistry } from '../ports/connection-registry.js';
import type { DedupeStore } from '../ports/dedupe-store.js';
import type { SessionStore } from '../ports/session-store.js';
import { MemoryEventLog } from '../adapters/memory/memory-event-log.js';
import { PortsAppendingLookup, type AppendingLookup } from '../history/appending-lookup.js';
import type { EventLog } from '../ports/event-log.js';

/** One implementation of every port, plus how to check that cluster-wide delivery works right now. */
export interface Backends {
  readonly kind: 'memory' | 'redis';
  readonly sessions: SessionStore;
  readonly registry: ConnectionRegistry;
  readonly dedupe: DedupeStore;
  readonly configStore: ConfigStore;
  readonly bus: ClusterBus;
  readonly eventLog: EventLog;
  /** The publish-time idempotency check + history append + node lookup (one round trip on Redis). */
  readonly appendingLookup: AppendingLookup;
  /** True while a round trip through the shared backend to this node works. */
  selfCheck(timeoutMs: number): Promise<boolean>;
  /** Start order: stores first, bus last; stop runs in reverse. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** In-memory backends: one node on its own, or several in one process sharing `shared`. */
export function memoryBackends(nodeId: string, shared: { world: MemoryRegistryWorld; hub: EventEmitter } = { world: new MemoryRegistryWorld(), hub: new EventEmitter() }): Backends {
  const parts = {
    sessions: new MemorySessionStore(),
    registry: new MemoryConnectionRegistry(nodeId, shared.world),
    dedupe: new MemoryDedupeStore(),
    configStore: new MemoryConfigStore(),
    bus: new MemoryClusterBus(nodeId, shared.hub),
    eventLog: sharedLog(shared.hub),
  };
  const order = [parts.sessions, parts.dedupe, parts.configStore, parts.eventLog, parts.registry, parts.bus];
  return {
    kind: 'memory',
    ...parts,
    appendingLookup: new PortsAppendingLookup({ dedupe: parts.dedupe, log: parts.eventLog, registry: parts.registry }),
    selfCheck: async () => true,
    start: async () => {
      for (const p of order) await p.start();
    },
    stop: async () => {
      for (const p of [...order].reverse()) await p.stop();
    },
  };
}

/** One event log per shared hub: in-process nodes of one cluster see one log, as Redis nodes do. */
const logs = new WeakMap<EventEmitter, MemoryEventLog>();
function sharedLog(hub: EventEmitter): MemoryEventLog {
  let log = logs.get(hub);
  if (!log) logs.set(hub, (log = new MemoryEventLog()));
  return log;
}
