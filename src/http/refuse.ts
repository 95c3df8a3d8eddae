import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { isBackendUnavailable } from '../backend-unavailable.js';
import { backendUnavailable, TidingsError } from '../errors.js';

/** Answers a refused upgrade on the raw socket: a plain HTTP response with the JSON error, then close. */
export function refuseUpgrade(socket: Duplex, err: TidingsError, extraHeaders: Record<string, string> = {}): void {
  if (!socket.writable) return void socket.destroy();
  const body = JSON.stringify(err.toBody());
  const headers = { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': String(Buffer.byteLength(body)), Connection: 'close', ...err.headers, ...extraHeaders };
  const head = `HTTP/1.1 ${err.status} ${STATUS_CODES[err.status] ?? ''}\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
  socket.end(head + body);
}

/** The same refusal on an ordinary HTTP response (Socket.IO polling, long-poll, SSE). */
export function refuseRequest(res: ServerResponse, err: TidingsError, extraHeaders: Record<string, string> = {}): void {
  const body = JSON.stringify(err.toBody());
  res.writeHead(err.status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body), ...err.headers, ...extraHeaders });
  res.end(body);
}

export function asTidingsError(e: unknown): TidingsError {
  if (e instanceof TidingsError) return e;
  return isBackendUnavailable(e) ? backendUnavailable() : new TidingsError('TIDINGS_INTERNAL');
}
