import { DedupeWindow } from '../../delivery/dedupe-window.js';
import type { EventLog } from '../../ports/event-log.js';
import type { PublishAnswer, PublishLookup, PublishRequest } from '../../ports/publish-lookup.js';
import { MemoryEventLog } from './memory-event-log.js';
import { MemoryRegistryWorld } from './memory-connection-registry.js';

const REPEAT: PublishAnswer = { fresh: false, nodes: [], offset: null };

/** The publish lookup for nodes in one process: one dedupe window, one event log and one registry world, shared. */
export class MemoryPublishLookup implements PublishLookup {
  readonly #world: MemoryRegistryWorld;
  readonly #window: DedupeWindow;
  readonly #log: EventLog;

  constructor(world: MemoryRegistryWorld = new MemoryRegistryWorld(), window: DedupeWindow = new DedupeWindow(), log: EventLog = new MemoryEventLog()) {
    this.#world = world;
    this.#window = window;
    this.#log = log;
  }

  async start(): Promise<void> {}
  async stop(): Promise<void> {}

  async lookup(request: PublishRequest): Promise<PublishAnswer> {
    if (request.dedupeKey !== null && !this.#window.firstSeen(`${request.user}:${request.dedupeKey}`, request.dedupeTtlMs)) return REPEAT;
    // The memory log answers without yielding to another publish in between, so offsets follow the dedupe order.
    const offset = await this.#log.append(request.user, request.append, request.limits);
    return { fresh: true, nodes: this.#world.nodesFor(request.user), offset };
  }
}
