import type { IncomingMessage } from 'node:http';
import { TidingsError } from '../errors.js';
import type { Refusal } from './refusal.js';

// The checks `ws` makes in handleUpgrade (ws 8, lib/websocket-server.js), made here first: a
// request `ws` would refuse is refused before the gate takes a connection slot for it, and with
// our JSON instead of ws's plain-text 400/405.
const KEY = /^[+/0-9A-Za-z]{22}==$/;
// RFC 7230 tchar: what a subprotocol name may consist of.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Why `ws` would refuse this upgrade, or null when it would accept it. */
export function upgradeRefusal(req: IncomingMessage): Refusal | null {
  if (req.method !== 'GET') return { error: new TidingsError('TIDINGS_METHOD_NOT_ALLOWED', `A WebSocket upgrade must be a GET, not ${req.method}`), headers: { Allow: 'GET' } };
  const upgrade = req.headers.upgrade;
  if (upgrade === undefined || upgrade.toLowerCase() !== 'websocket') return bad(`Upgrade must be 'websocket', not '${upgrade ?? ''}'`);
  const key = req.headers['sec-websocket-key'];
  if (key === undefined || !KEY.test(key)) return bad('Sec-WebSocket-Key is missing or not 16 bytes in base64');
  const version = req.headers['sec-websocket-version'];
  if (version !== '13' && version !== '8') return { error: new TidingsError('TIDINGS_BAD_UPGRADE', `Sec-WebSocket-Version must be 13 (or 8), not '${version ?? ''}'`), headers: { 'Sec-WebSocket-Version': '13, 8' } };
  const protocols = req.headers['sec-websocket-protocol'];
  if (protocols !== undefined && !validProtocolList(protocols)) return bad('Sec-WebSocket-Protocol must be a comma-separated list of distinct tokens');
  return null;
}

function bad(message: string): Refusal {
  return { error: new TidingsError('TIDINGS_BAD_UPGRADE', message) };
}

function validProtocolList(header: string): boolean {
  // ws allows blanks around commas only, not at either end of the header.
  if (/^[ \t]|[ \t]$/.test(header)) return false;
  const names = header.split(',').map((p) => p.replace(/^[ \t]+|[ \t]+$/g, ''));
  if (names.some((n) => !TOKEN.test(n))) return false;
  return new Set(names).size === names.length;
}
