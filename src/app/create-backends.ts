import type { Settings } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { Backends } from './backends.js';

/** Redis backends for `tidings.redis.url`. */
export function createBackends(_s: Settings, _nodeId: string, _log: Logger): Backends {
  throw new Error('Redis backends are not wired yet');
}
