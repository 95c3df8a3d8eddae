import { BackendUnavailableError } from '../../backend-unavailable.js';

// How ioredis says that Redis did not answer: by error class name, by message (its own messages
// and the server's transient replies), and by the socket's error code.
const NAMES = new Set(['MaxRetriesPerRequestError', 'ClusterAllFailedError', 'AbortError']);
const MESSAGES = /^(Connection is closed|Command timed out|Stream isn't writeable|.*enableOfflineQueue|Too many Cluster redirections|Failed to refresh slots cache|CLUSTERDOWN|LOADING|MASTERDOWN|TRYAGAIN|READONLY)/;
const CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND']);

/**
 * The error a Redis adapter rejects with: a BackendUnavailableError when Redis did not answer,
 * anything else unchanged (a bug or a script error stays what it is).
 */
export function redisFailure(e: unknown): unknown {
  if (!(e instanceof Error) || e instanceof BackendUnavailableError) return e;
  const code = (e as NodeJS.ErrnoException).code;
  if (NAMES.has(e.name) || MESSAGES.test(e.message) || (code !== undefined && CODES.has(code))) {
    return new BackendUnavailableError(`redis unavailable: ${e.message}`, { cause: e });
  }
  return e;
}

/** Awaits `p`, naming a Redis outage as BackendUnavailableError. */
export async function named<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (e) {
    throw redisFailure(e);
  }
}
