/**
 * Client connections of the messaging benchmark, shared by the measuring process and the
 * connection holders (bench/conn-holder.ts): tidings login, Socket.IO (websocket or polling),
 * tidings' plain WebSocket, the raw ws floor and Nchan's WebSocket subscriber.
 */
import { Agent } from 'node:http';
import { io, type Socket } from 'socket.io-client';
import WebSocket from 'ws';
import { httpRequest } from './bench-lib.js';

export interface Login {
  readonly session: string;
  readonly cookie: string;
}

export async function login(agent: Agent, url: string, user: number): Promise<Login> {
  const r = await httpRequest(agent, `${url}/api/login`, 'POST', JSON.stringify({ login: `u${user}@bench.example`, password: `pw${user}` }));
  if (r.status !== 200) throw new Error(`login of u${user} failed: ${r.status} ${r.body}`);
  const setCookie = r.headers['set-cookie'];
  const cookie = (Array.isArray(setCookie) ? setCookie[0] : setCookie ?? '').split(';')[0];
  return { session: (JSON.parse(r.body) as { session: string }).session, cookie };
}

export type Transport = 'websocket' | 'polling';

/** A Socket.IO connection: system A with `auth.user`, tidings with a login's session and cookie. */
export function connectSocketIo(url: string, transport: Transport, opts: { auth?: Record<string, string>; login?: Login }): Promise<Socket> {
  const socket = io(url, {
    path: '/socket.io',
    transports: [transport],
    reconnection: false,
    forceNew: true,
    timeout: 20_000,
    ...(opts.auth ? { auth: opts.auth } : {}),
    ...(opts.login ? { query: { session: opts.login.session }, extraHeaders: { cookie: opts.login.cookie } } : {}),
  });
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', (err) => {
      socket.close();
      reject(new Error(`Socket.IO ${transport} connect to ${url} failed: ${err.message}`));
    });
  });
}

/** A plain WebSocket: tidings' endpoint (`login`), the raw ws floor (`user`) or an Nchan subscriber (`nchan`). */
export function connectWebSocket(url: string, who: { login: Login } | { user: number } | { nchan: number }): Promise<WebSocket> {
  const base = url.replace(/^http/, 'ws');
  const ws = 'login' in who
    ? new WebSocket(`${base}/websockets/bench?session=${who.login.session}`, { headers: { cookie: who.login.cookie }, perMessageDeflate: false })
    : 'user' in who
      ? new WebSocket(`${base}/ws?user=${who.user}`, { perMessageDeflate: false })
      : new WebSocket(`${base}/sub?id=u${who.nchan}`, { perMessageDeflate: false });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`WebSocket to ${base} refused: ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

export async function pool<T, R>(items: readonly T[], parallel: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(parallel, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  }));
  return out;
}
