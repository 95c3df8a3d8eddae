import { RedisClusterBus } from '../adapters/redis/redis-cluster-bus.js';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createRedisClient, lastError, whenReady } from '../adapters/redis/redis-client.js';
import { RedisConfigStore } from '../adapters/redis/redis-config-store.js';
import { RedisConnectionRegistry } from '../adapters/redis/redis-connection-registry.js';
import { RedisEventLog } from '../adapters/redis/redis-event-log.js';
import { RedisPublishLookup } from '../adapters/redis/redis-publish-lookup.js';
import { RedisSessionStore } from '../adapters/redis/redis-session-store.js';
import type { Settings } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { orderedBackends, type Backends } from './backends.js';

const START_TIMEOUT_MS = 15_000;

/**
 * Redis backends for `tidings.redis.url`. The composition root owns the one shared client (the
 * adapters only borrow it; the bus duplicates its own blocking and subscriber connections).
 */
export function createBackends(s: Settings, nodeId: string, log: Logger, configDir: string, metrics: Metrics, advertiseUrl: () => string = () => ''): Backends {
  const rlog = log.child({ component: 'redis' });
  const client = createRedisClient(s['tidings.redis.url'], { role: `main-${nodeId}`, log: rlog, tlsCa: readCa(s['tidings.redis.tlsCaFile'], configDir) });
  const prefix = s['tidings.redis.prefix'];
  const registry = new RedisConnectionRegistry(client, { prefix, nodeId, heartbeatMs: s['tidings.cluster.heartbeatMs'], livenessTtlMs: s['tidings.cluster.livenessTtlMs'], log: rlog, advertiseUrl });
  const bus = new RedisClusterBus(client, { prefix, nodeId, log: rlog, onRoundTrip: (s) => metrics.redisRoundTrip.observe(s) });
  return orderedBackends(
    'redis',
    {
      sessions: new RedisSessionStore(client, { prefix, log: rlog }),
      configStore: new RedisConfigStore(client, { prefix, log: rlog }),
      eventLog: new RedisEventLog(client, { prefix }),
      registry,
      publishLookup: new RedisPublishLookup(client, { prefix, membership: registry.membership }),
      bus,
    },
    {
      beforeStart: () =>
        whenReady(client, START_TIMEOUT_MS).catch(() => {
          const why = lastError(client);
          throw new Error(`cannot reach Redis at tidings.redis.url within ${START_TIMEOUT_MS / 1000} s${why ? `: ${why}` : ''}`);
        }),
      onStopError: (e) => rlog.warn({ err: String(e) }, 'error while stopping a backend'),
      afterStop: () => client.disconnect(),
    },
  );
}

/** The CA file's PEM text, or undefined when none is set. A missing or unreadable file stops the start-up. */
function readCa(file: string, configDir: string): string | undefined {
  if (!file) return undefined;
  const path = resolve(configDir, file);
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`tidings.redis.tlsCaFile: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}
