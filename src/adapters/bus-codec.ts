import type { BusMessage } from '../ports/cluster-bus.js';

/**
 * The one wire form of bus messages, for every ClusterBus: JSON text, checked on the way in, so a
 * handler only ever sees a well-formed message of a type this node knows.
 */
export type Decoded =
  | { readonly ok: true; readonly message: BusMessage }
  | { readonly ok: false; readonly why: 'not JSON' | 'malformed'; readonly type?: undefined }
  /** A type this node does not know, e.g. from a newer node during a rolling upgrade. */
  | { readonly ok: false; readonly why: 'unknown type'; readonly type: string };

export function encodeBusMessage(m: BusMessage): string {
  return JSON.stringify(m);
}

export function decodeBusMessage(text: string): Decoded {
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch {
    return { ok: false, why: 'not JSON' };
  }
  if (typeof m !== 'object' || m === null) return { ok: false, why: 'malformed' };
  const o = m as Record<string, unknown>;
  if (typeof o.type !== 'string' || typeof o.from !== 'string') return { ok: false, why: 'malformed' };
  let ok: boolean;
  switch (o.type) {
    case 'deliver':
      ok = Array.isArray(o.batch) && o.batch.every(isBatchItem);
      break;
    case 'session-ended':
      ok = typeof o.sessionId === 'string';
      break;
    case 'config-changed':
      ok = typeof o.reason === 'string';
      break;
    case 'reload':
      ok = true;
      break;
    default:
      return { ok: false, why: 'unknown type', type: o.type.slice(0, 64) };
  }
  return ok ? { ok: true, message: m as BusMessage } : { ok: false, why: 'malformed' };
}

function isBatchItem(b: unknown): boolean {
  if (typeof b !== 'object' || b === null) return false;
  const o = b as Record<string, unknown>;
  return (
    typeof o.user === 'string' &&
    (o.pathFilter === null || typeof o.pathFilter === 'string') &&
    Array.isArray(o.payloads) &&
    o.payloads.every((p) => typeof p === 'string') &&
    Array.isArray(o.sourceTokens) &&
    o.sourceTokens.length === o.payloads.length &&
    o.sourceTokens.every((t) => t === null || typeof t === 'string')
  );
}
