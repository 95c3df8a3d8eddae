import type { ServerResponse } from 'node:http';
import { TidingsError } from '../errors.js';
import { repeatedIn } from '../http/validate.js';
import type { Refusal } from './refusal.js';

// Engine.IO answers its own errors with `{"code":1,"message":"Session ID unknown"}`, a bare
// 400/413 from the polling transport, or a text/html 400 on an upgrade. tidings answers in its
// own shape instead: what can be known from the request is refused before Engine.IO sees it,
// and whatever Engine.IO still refuses is translated (engine.io 6, lib/server.ts `errors`).

/** Why Engine.IO would refuse this request for its shape alone, or null. */
export function engineRequestRefusal(method: string | undefined, query: URLSearchParams, upgrade: boolean): Refusal | null {
  // Engine.IO would read a repeated key as an array, tidings' checks the first value: never guess.
  const repeated = repeatedIn(query, ['EIO', 'transport', 'sid']);
  if (repeated) return { error: repeated };
  if (query.get('EIO') !== '4') return { error: new TidingsError('TIDINGS_EIO_VERSION') };
  const transport = query.get('transport');
  if (transport !== 'polling' && transport !== 'websocket') return { error: new TidingsError('TIDINGS_TRANSPORT_UNKNOWN', `Unknown Engine.IO transport '${transport ?? ''}'; use 'polling' or 'websocket'`) };
  if (upgrade) return transport === 'websocket' ? null : { error: new TidingsError('TIDINGS_EIO_BAD_REQUEST', 'A WebSocket upgrade needs transport=websocket') };
  if (transport === 'websocket') return { error: new TidingsError('TIDINGS_EIO_BAD_REQUEST', 'transport=websocket needs a WebSocket upgrade') };
  if (!query.has('sid')) {
    if (method !== 'GET') return { error: new TidingsError('TIDINGS_METHOD_NOT_ALLOWED', `The Engine.IO handshake is a GET, not ${method}`), headers: { Allow: 'GET' } };
  } else if (method !== 'GET' && method !== 'POST') {
    return { error: new TidingsError('TIDINGS_METHOD_NOT_ALLOWED', `Engine.IO polling takes GET and POST, not ${method}`), headers: { Allow: 'GET, POST' } };
  }
  return null;
}

/** An Engine.IO `connection_error` (its code and context) as ours. */
export function fromEngineError(code: number, context: Record<string, unknown> | undefined): TidingsError {
  switch (code) {
    case 0:
      return new TidingsError('TIDINGS_TRANSPORT_UNKNOWN');
    case 1:
      return new TidingsError('TIDINGS_SID_UNKNOWN');
    case 2:
      return new TidingsError('TIDINGS_METHOD_NOT_ALLOWED', 'The Engine.IO handshake is a GET');
    case 5:
      return new TidingsError('TIDINGS_EIO_VERSION');
    default: {
      const name = typeof context?.name === 'string' ? context.name : undefined;
      if (name === 'TRANSPORT_MISMATCH') return new TidingsError('TIDINGS_EIO_BAD_REQUEST', 'The Engine.IO session uses another transport now');
      if (name === 'PROTOCOL_MISMATCH') return new TidingsError('TIDINGS_EIO_BAD_REQUEST', 'The Engine.IO session was opened with another protocol revision');
      return new TidingsError('TIDINGS_EIO_BAD_REQUEST', name ? `Engine.IO refused the request (${name})` : undefined);
    }
  }
}

/** What the polling transport means by a bare status (it writes no body). */
function fromBareStatus(status: number): TidingsError {
  if (status === 413) return new TidingsError('TIDINGS_BODY_TOO_LARGE');
  if (status === 400) return new TidingsError('TIDINGS_EIO_BAD_REQUEST', 'Another request of this Engine.IO session is still pending, or the payload is not text');
  return new TidingsError('TIDINGS_EIO_BAD_REQUEST');
}

/**
 * Makes any error status Engine.IO writes on `res` leave as `{"error":{…}}`: `known()` is what
 * its `connection_error` said about this request, if anything; otherwise the status is read.
 */
export function answerErrorsInJson(res: ServerResponse, known: () => TidingsError | undefined): void {
  const writeHead = res.writeHead.bind(res) as (status: number, ...rest: unknown[]) => ServerResponse;
  const patched = (status: number, ...rest: unknown[]): ServerResponse => {
    if (status < 400) return writeHead(status, ...rest);
    const err = known() ?? fromBareStatus(status);
    const body = JSON.stringify(err.toBody());
    writeHead(err.status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': String(Buffer.byteLength(body)) });
    const end = res.end.bind(res) as (body: string) => ServerResponse;
    // Engine.IO's own body (or none) is dropped; ours was promised by Content-Length.
    res.write = (() => true) as typeof res.write;
    res.end = (() => end(body)) as typeof res.end;
    return res;
  };
  res.writeHead = patched as typeof res.writeHead;
}
