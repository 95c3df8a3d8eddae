import { MemoryClusterBus } from '../../src/adapters/memory/memory-cluster-bus.js';
import { MemoryCluster } from '../../src/adapters/memory/memory-cluster.js';
import { MemoryConfigStore } from '../../src/adapters/memory/memory-config-store.js';
import { MemoryConnectionRegistry } from '../../src/adapters/memory/memory-connection-registry.js';
import { MemoryPublishLookup } from '../../src/adapters/memory/memory-publish-lookup.js';
import { MemorySessionStore } from '../../src/adapters/memory/memory-session-store.js';
import { portContract } from './ports.contract.js';
import { MemoryEventLog } from '../../src/adapters/memory/memory-event-log.js';
import { eventLogContract } from './event-log.contract.js';

// Two in-process nodes sharing one MemoryCluster.
portContract('memory', async () => {
  const c = new MemoryCluster();
  return {
    sessions: new MemorySessionStore(Date.now, c.sessions),
    config: new MemoryConfigStore(c.config),
    registryA: new MemoryConnectionRegistry('node-a', c.registry),
    registryB: new MemoryConnectionRegistry('node-b', c.registry),
    lookupA: new MemoryPublishLookup(c.registry, c.dedupe, c.log),
    lookupB: new MemoryPublishLookup(c.registry, c.dedupe, c.log),
    eventLog: c.log,
    busA: new MemoryClusterBus('node-a', c.hub),
    busB: new MemoryClusterBus('node-b', c.hub),
    async cleanup() {},
  };
});

// One node's event log; losing it is a restart of that node (a new, empty log).
eventLogContract('memory', async () => {
  const log = new MemoryEventLog();
  return {
    log,
    logB: log,
    lose: async () => new MemoryEventLog(),
    async cleanup() {},
  };
});
