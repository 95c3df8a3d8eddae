import { DedupeWindow } from '../../delivery/dedupe-window.js';
import type { PublishAnswer, PublishLookup, PublishRequest } from '../../ports/publish-lookup.js';
import { MemoryRegistryWorld } from './memory-connection-registry.js';

const REPEAT: PublishAnswer = { fresh: false, nodes: [] };

/** The publish lookup for nodes in one process: one dedupe window and one registry world, shared. */
export class MemoryPublishLookup implements PublishLookup {
  readonly #world: MemoryRegistryWorld;
  readonly #window: DedupeWindow;

  constructor(world: MemoryRegistryWorld = new MemoryRegistryWorld(), window: DedupeWindow = new DedupeWindow()) {
    this.#world = world;
    this.#window = window;
  }

  async start(): Promise<void> {}
  async stop(): Promise<void> {}

  async lookup(request: PublishRequest): Promise<PublishAnswer> {
    if (request.dedupeKey !== null && !this.#window.firstSeen(`${request.user}:${request.dedupeKey}`, request.dedupeTtlMs)) return REPEAT;
    return { fresh: true, nodes: this.#world.nodesFor(request.user) };
  }
}
