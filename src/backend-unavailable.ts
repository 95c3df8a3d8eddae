/**
 * Recognises a failure of the shared backend (Redis) to answer at all, as opposed to a bug:
 * such requests get 503 TIDINGS_BACKEND_UNAVAILABLE with Retry-After instead of 500. Matched by
 * shape (ioredis error names and messages, socket error codes) so that nothing outside the
 * adapters needs to know the client library.
 */
const NAMES = new Set(['MaxRetriesPerRequestError', 'ClusterAllFailedError', 'AbortError']);
const MESSAGES = /^(Connection is closed|Command timed out|Stream isn't writeable|.*enableOfflineQueue|Too many Cluster redirections|Failed to refresh slots cache|CLUSTERDOWN|LOADING|MASTERDOWN|TRYAGAIN|READONLY)/;
const CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND']);

export function isBackendUnavailable(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  if (NAMES.has(e.name) || MESSAGES.test(e.message)) return true;
  const code = (e as NodeJS.ErrnoException).code;
  return code !== undefined && CODES.has(code);
}
