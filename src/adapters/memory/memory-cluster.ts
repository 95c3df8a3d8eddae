import { EventEmitter } from 'node:events';
import { DedupeWindow } from '../../delivery/dedupe-window.js';
import type { StoredValue } from '../../ports/config-store.js';
import type { Session } from '../../ports/session-store.js';
import { MemoryEventLog } from './memory-event-log.js';
import { MemoryRegistryWorld } from './memory-connection-registry.js';

/**
 * What the in-memory backends of several nodes in one process share, so that they form one
 * cluster: a login on one is valid on another, a publish reaches all, idempotency and the
 * per-user cap are cluster-wide, and so is the event log (as on Redis). A node on its own gets a MemoryCluster of its own.
 */
export class MemoryCluster {
  readonly registry = new MemoryRegistryWorld();
  readonly hub = new EventEmitter();
  readonly sessions = new Map<string, Session>();
  readonly config = new Map<string, StoredValue>();
  readonly dedupe = new DedupeWindow();
  readonly log = new MemoryEventLog();
}
