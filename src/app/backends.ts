import { MemoryClusterBus } from '../adapters/memory/memory-cluster-bus.js';
import { MemoryCluster } from '../adapters/memory/memory-cluster.js';
import { MemoryConfigStore } from '../adapters/memory/memory-config-store.js';
import { MemoryConnectionRegistry } from '../adapters/memory/memory-connection-registry.js';
import { MemoryPublishLookup } from '../adapters/memory/memory-publish-lookup.js';
import { MemorySessionStore } from '../adapters/memory/memory-session-store.js';
import type { LogLike } from '../adapters/log-like.js';
import type { ClusterBus } from '../ports/cluster-bus.js';
import type { ConfigStore } from '../ports/config-store.js';
import type { ConnectionRegistry } from '../ports/connection-registry.js';
import type { EventLog } from '../ports/event-log.js';
import type { PublishLookup } from '../ports/publish-lookup.js';
import type { SessionStore } from '../ports/session-store.js';

/** One implementation of every port. */
export interface BackendParts {
  readonly sessions: SessionStore;
  readonly configStore: ConfigStore;
  /** Read by resuming clients; the publish path appends through `publishLookup`, in the same call as its other steps. */
  readonly eventLog: EventLog;
  readonly registry: ConnectionRegistry;
  readonly publishLookup: PublishLookup;
  readonly bus: ClusterBus;
}

/** The backends of one node, started and stopped as one. */
export interface Backends extends BackendParts {
  readonly kind: 'memory' | 'redis';
  /** Start order: stores first, then the registry (it joins the cluster), the bus last; stop runs in reverse. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** What a kind of backend adds around the ordered parts: connecting first, disconnecting last. */
export interface BackendHooks {
  beforeStart?(): Promise<void>;
  afterStop?(): void;
  /** A part that fails to stop; the rest still stop. Default: rethrown at once. */
  onStopError?(err: unknown): void;
}

/** The one place that orders the backends' lifecycle, for every kind. */
export function orderedBackends(kind: Backends['kind'], parts: BackendParts, hooks: BackendHooks = {}): Backends {
  const order = [parts.sessions, parts.configStore, parts.eventLog, parts.registry, parts.publishLookup, parts.bus];
  return {
    kind,
    ...parts,
    start: async () => {
      await hooks.beforeStart?.();
      for (const p of order) await p.start();
    },
    stop: async () => {
      for (const p of [...order].reverse()) {
        if (hooks.onStopError) await p.stop().catch(hooks.onStopError);
        else await p.stop();
      }
      hooks.afterStop?.();
    },
  };
}

/** In-memory backends: one node on its own, or several in one process sharing `cluster` (one event log among them, as Redis nodes share one). */
export function memoryBackends(nodeId: string, cluster: MemoryCluster = new MemoryCluster(), log?: LogLike): Backends {
  return orderedBackends('memory', {
    sessions: new MemorySessionStore(Date.now, cluster.sessions),
    configStore: new MemoryConfigStore(cluster.config),
    eventLog: cluster.log,
    registry: new MemoryConnectionRegistry(nodeId, cluster.registry),
    publishLookup: new MemoryPublishLookup(cluster.registry, cluster.dedupe, cluster.log),
    bus: new MemoryClusterBus(nodeId, cluster.hub, log),
  });
}
