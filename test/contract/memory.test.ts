import { EventEmitter } from 'node:events';
import { MemoryClusterBus } from '../../src/adapters/memory/memory-cluster-bus.js';
import { MemoryConfigStore } from '../../src/adapters/memory/memory-config-store.js';
import { MemoryConnectionRegistry, MemoryRegistryWorld } from '../../src/adapters/memory/memory-connection-registry.js';
import { MemoryDedupeStore } from '../../src/adapters/memory/memory-dedupe-store.js';
import { MemorySessionStore } from '../../src/adapters/memory/memory-session-store.js';
import { portContract } from './ports.contract.js';
import { MemoryEventLog } from '../../src/adapters/memory/memory-event-log.js';
import { PortsAppendingLookup } from '../../src/history/appending-lookup.js';
import { eventLogContract } from './event-log.contract.js';

// Two in-process nodes sharing one registry world and one event hub.
portContract('memory', async () => {
  const world = new MemoryRegistryWorld();
  const hub = new EventEmitter();
  return {
    sessions: new MemorySessionStore(),
    dedupe: new MemoryDedupeStore(),
    config: new MemoryConfigStore(),
    registryA: new MemoryConnectionRegistry('node-a', world),
    registryB: new MemoryConnectionRegistry('node-b', world),
    busA: new MemoryClusterBus('node-a', hub),
    busB: new MemoryClusterBus('node-b', hub),
    async cleanup() {},
  };
});

// One node's event log; losing it is a restart of that node (a new, empty log).
eventLogContract('memory', async () => {
  const log = new MemoryEventLog();
  const registry = new MemoryConnectionRegistry('node-a', new MemoryRegistryWorld());
  return {
    log,
    logB: log,
    lookup: new PortsAppendingLookup({ dedupe: new MemoryDedupeStore(), log, registry }),
    registry,
    registryNode: 'node-a',
    lose: async () => new MemoryEventLog(),
    async cleanup() {},
  };
});
