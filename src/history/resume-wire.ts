import { TidingsError } from '../errors.js';
import type { NotRecoveredReason } from '../ports/event-log.js';
import type { FeedSink } from './resume-feed.js';
import { offsetFrom, type Offset } from './offset.js';

/**
 * The name of the "not recovered" answer on every transport (README, "Resume"): a pseudo-event
 * `{name: 'tidings:not-recovered', args: [{reason}], namespace: '/', id: <where the client stands now>}`.
 */
export const NOT_RECOVERED = 'tidings:not-recovered';

export type NotRecoveredWhy = NotRecoveredReason | 'unavailable';

/** The pseudo-event's wire JSON; without `id` when the log could not be read at all. */
export function notRecoveredJson(reason: NotRecoveredWhy, offset: string | null): string {
  return `{"name":"${NOT_RECOVERED}","args":[{"reason":"${reason}"}],"namespace":"/"${offset === null ? '' : `,"id":${JSON.stringify(offset)}`}}`;
}

/** `?since=` of a request, null when absent or empty. Throws TIDINGS_BAD_OFFSET. */
export function sinceFromQuery(query: URLSearchParams): Offset | null {
  const v = query.get('since');
  return v === null || v === '' ? null : offsetFrom(v, "Parameter 'since'");
}

/** A sink that writes JSON text frames (the plain WebSocket). */
export function jsonFrameSink(send: (json: string) => void): FeedSink {
  return {
    event: (_event, json) => send(json),
    notRecovered: (reason, offset) => send(notRecoveredJson(reason, offset)),
  };
}

/** Socket.IO: the offset is the last argument of every event (as in Socket.IO's connection-state recovery). */
export function socketIoSink(socket: { emit(name: string, ...args: unknown[]): unknown }): FeedSink {
  return {
    event: (event) => void socket.emit(event.name, ...event.args, event.id),
    notRecovered: (reason, offset) => void (offset === null ? socket.emit(NOT_RECOVERED, { reason }) : socket.emit(NOT_RECOVERED, { reason }, offset)),
  };
}

/** `auth.offset` of a Socket.IO handshake (CONNECT packet), null when absent. Throws TIDINGS_BAD_OFFSET. */
export function offsetFromAuth(auth: unknown): Offset | null {
  const v = auth !== null && typeof auth === 'object' ? (auth as Record<string, unknown>).offset : undefined;
  if (v === undefined || v === null || v === '') return null;
  if (typeof v !== 'string') throw new TidingsError('TIDINGS_BAD_OFFSET', "Socket.IO auth 'offset' must be a string");
  return offsetFrom(v, "Socket.IO auth 'offset'");
}

/** A refusal as Socket.IO middleware passes it on: the client's `connect_error` has `data: {code, message}`. */
export function asConnectError(e: unknown): Error {
  if (!(e instanceof TidingsError)) return e instanceof Error ? e : new Error(String(e));
  return Object.assign(new Error(e.message), { data: e.toBody().error });
}
