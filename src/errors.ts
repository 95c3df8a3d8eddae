/**
 * The one catalogue of error codes tidings answers with. Every HTTP error body is
 * `{"error":{"code":"TIDINGS_…","message":"…"}}`; the status lives here, next to the code,
 * so a route can never pair a code with the wrong status.
 */
export const ERRORS = {
  // request shape
  TIDINGS_BAD_JSON: { status: 400, message: 'Request body is not valid JSON' },
  TIDINGS_BAD_REQUEST: { status: 400, message: 'Request is malformed' },
  TIDINGS_VALIDATION: { status: 400, message: 'Request body has a wrong or missing field' },
  TIDINGS_INVALID_PATH_FILTER: { status: 400, message: 'Invalid path filter' },
  TIDINGS_BODY_TOO_LARGE: { status: 413, message: 'Request body is too large' },
  TIDINGS_UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'Content-Type must be application/json' },
  TIDINGS_NOT_FOUND: { status: 404, message: 'No such route' },
  TIDINGS_METHOD_NOT_ALLOWED: { status: 405, message: 'Method not allowed' },
  TIDINGS_BAD_UPGRADE: { status: 400, message: 'Not a valid WebSocket upgrade request' },
  TIDINGS_TRANSPORT_UNKNOWN: { status: 400, message: "Unknown Engine.IO transport; use 'polling' or 'websocket'" },
  TIDINGS_EIO_VERSION: { status: 400, message: 'Only Engine.IO protocol 4 (EIO=4, Socket.IO v3 and v4 clients) is supported' },
  TIDINGS_EIO_BAD_REQUEST: { status: 400, message: 'Request does not fit the Engine.IO session' },
  TIDINGS_SID_UNKNOWN: { status: 400, message: 'No such Engine.IO session (sid); it ended, reconnect' },
  // authentication and sessions
  TIDINGS_BAD_CREDENTIALS: { status: 401, message: 'Unknown login or wrong password' },
  TIDINGS_LOGIN_RATE_LIMITED: { status: 429, message: 'Too many failed logins; try again later' },
  TIDINGS_SESSION_MISSING: { status: 401, message: "Missing parameter 'session'" },
  TIDINGS_SESSION_UNKNOWN: { status: 401, message: 'No such session, or it has expired' },
  TIDINGS_SECRET_MISSING: { status: 403, message: 'The session secret cookie is missing' },
  TIDINGS_SECRET_WRONG: { status: 403, message: 'The session secret cookie does not match' },
  TIDINGS_IP_MISMATCH: { status: 403, message: 'The client IP does not match the session' },
  TIDINGS_ORIGIN_FORBIDDEN: { status: 403, message: 'Origin not allowed' },
  TIDINGS_USER_DISABLED: { status: 403, message: 'The user is not enabled for mail' },
  TIDINGS_WEBSOCKETS_DISABLED: { status: 403, message: 'WebSockets are disabled for this user' },
  TIDINGS_TOO_MANY_CONNECTIONS: { status: 429, message: 'Too many connections for this user' },
  TIDINGS_DUPLICATE_CONNECTION: { status: 409, message: 'A connection with this id already exists for this user' },
  TIDINGS_PUSH_UNAUTHORIZED: { status: 401, message: 'Missing or wrong bearer token' },
  TIDINGS_PUSH_DISABLED: { status: 403, message: 'Publishing is disabled: tidings.push.token is empty' },
  TIDINGS_ADMIN_UNAUTHORIZED: { status: 401, message: 'Missing or wrong admin token' },
  TIDINGS_ADMIN_DISABLED: { status: 403, message: 'The admin API is disabled: tidings.admin.token is empty' },
  TIDINGS_NOTIFY_UNAUTHORIZED: { status: 401, message: 'Missing or wrong Basic credentials' },
  TIDINGS_NOTIFY_DISABLED: { status: 403, message: 'The notify endpoint is disabled: tidings.notify.login/password are empty' },
  TIDINGS_SID_FORBIDDEN: { status: 403, message: 'The Engine.IO session (sid) was opened by another login session' },
  // addressing
  TIDINGS_UNKNOWN_USER: { status: 404, message: 'No such user' },
  TIDINGS_UNKNOWN_CONTEXT: { status: 404, message: 'No such context' },
  TIDINGS_UNKNOWN_KEY: { status: 400, message: 'No such configuration key' },
  TIDINGS_CONFIG_TYPE: { status: 400, message: 'Value has the wrong type for this key' },
  TIDINGS_CONFIG_INVALID: { status: 422, message: 'The configuration is invalid' },
  // server state
  TIDINGS_NOT_READY: { status: 503, message: 'This node cannot deliver cluster-wide right now' },
  TIDINGS_BACKEND_UNAVAILABLE: { status: 503, message: 'The cluster store (Redis) cannot be reached right now; try again shortly' },
  TIDINGS_SHUTTING_DOWN: { status: 503, message: 'This node is shutting down' },
  TIDINGS_INTERNAL: { status: 500, message: 'Internal error' },
  // request shape, continued
  TIDINGS_RESERVED_EVENT: { status: 400, message: 'This event name is reserved by Socket.IO or by tidings and cannot be published' },
  TIDINGS_TOO_DEEP: { status: 400, message: 'The event nests objects and arrays too deeply' },
  TIDINGS_REPEATED_PARAMETER: { status: 400, message: 'A query parameter is given more than once' },
  TIDINGS_KEY_SERVER_WIDE: { status: 400, message: 'This key is server-wide: set it in a .properties file, not per context or user' },
  TIDINGS_BAD_URL: { status: 400, message: 'The request URL is malformed' },
  TIDINGS_HEADERS_TOO_LARGE: { status: 431, message: 'The request headers are too large' },
  TIDINGS_REQUEST_TIMEOUT: { status: 408, message: 'The request did not arrive in time' },
  // self-test through the balancer (tidings diag)
  TIDINGS_DIAG_DISABLED: { status: 403, message: 'The self-test routes are off: tidings.diag.enabled is false' },
  TIDINGS_DIAG_BUSY: { status: 429, message: 'Too many self-tests running on this node; try again shortly' },
  // cluster relay (Engine.IO polling without balancer affinity)
  TIDINGS_RELAY_FORBIDDEN: { status: 403, message: 'A relayed request without a valid signature of a cluster node' },
  TIDINGS_RELAY_FAILED: { status: 502, message: 'The node that holds this Engine.IO session cannot be reached; reconnect' },
  // history
  TIDINGS_BAD_OFFSET: { status: 400, message: 'The offset to resume from is malformed' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

export class TidingsError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details?: Record<string, unknown>;
  /** HTTP headers the answer carries (Retry-After on 429 and 503); never part of the body. */
  readonly headers: Readonly<Record<string, string>>;

  constructor(code: ErrorCode, message?: string, details?: Record<string, unknown>, headers: Record<string, string> = {}) {
    super(message ?? ERRORS[code].message);
    this.name = 'TidingsError';
    this.code = code;
    this.status = ERRORS[code].status;
    this.details = details;
    this.headers = headers;
  }

  toBody(): { error: { code: ErrorCode; message: string; details?: Record<string, unknown> } } {
    return { error: { code: this.code, message: this.message, ...(this.details ? { details: this.details } : {}) } };
  }
}

/** Seconds a client is asked to wait when the cluster store is unreachable. */
export const BACKEND_RETRY_AFTER_S = 2;

/** 503 with Retry-After when the cluster store cannot be reached. */
export function backendUnavailable(): TidingsError {
  return new TidingsError('TIDINGS_BACKEND_UNAVAILABLE', undefined, undefined, { 'Retry-After': String(BACKEND_RETRY_AFTER_S) });
}

export function errorBody(code: ErrorCode, message?: string): string {
  return JSON.stringify(new TidingsError(code, message).toBody());
}
