import { pino } from 'pino';
import { io as ioClient, type Socket, type ManagerOptions, type SocketOptions } from 'socket.io-client';
import WebSocket from 'ws';
import { TidingsNode, type NodeOptions } from '../../src/app/tidings-node.js';
import { makeConfigDir, PUSH_TOKEN } from './config-dir.js';

export const testLog = () => pino({ level: process.env.TIDINGS_TEST_LOG ?? 'silent' });

export interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

/** A logger whose JSON lines land in `lines` (parsed), for tests that assert on what was logged. */
export function captureLog(level = 'info'): { log: pino.Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const log = pino({ level }, { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) });
  return { log, lines };
}

export interface TestNode {
  node: TidingsNode;
  url: string;
  dir: string;
  write(path: string, text: string): void;
  stop(): Promise<void>;
}

/** A real tidings node in this process on a free loopback port, with its own config directory. */
export async function startNode(opts: Parameters<typeof makeConfigDir>[0] & { env?: NodeJS.ProcessEnv; backends?: NodeOptions['backends']; log?: NodeOptions['log'] } = {}): Promise<TestNode> {
  const cfg = makeConfigDir(opts);
  const node = new TidingsNode({ configDir: cfg.dir, env: opts.env ?? {}, log: opts.log ?? testLog(), backends: opts.backends });
  await node.start();
  return {
    node,
    url: node.url,
    dir: cfg.dir,
    write: cfg.write,
    stop: async () => {
      await node.stop();
      cfg.remove();
    },
  };
}

export interface Login {
  session: string;
  cookie: string;
  user: number;
  context: number;
}

export async function login(url: string, login: string, password: string): Promise<Login> {
  const res = await fetch(`${url}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ login, password }) });
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${await res.text()}`);
  const body = (await res.json()) as { session: string; user: number; context: number };
  const setCookie = res.headers.get('set-cookie') ?? '';
  return { session: body.session, cookie: setCookie.split(';')[0], user: body.user, context: body.context };
}

export async function push(url: string, body: Record<string, unknown>, token = PUSH_TOKEN): Promise<{ status: number; json: any }> {
  const res = await fetch(`${url}/api/push`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(body) });
  return { status: res.status, json: await res.json() };
}

/** A connected Socket.IO client; rejects with the server's refusal when the handshake fails. */
export function connectSocketIo(url: string, l: Login, opts: Partial<ManagerOptions & SocketOptions> & { connection?: string; subPath?: string } = {}): Promise<Socket> {
  const query: Record<string, string> = { session: l.session, ...(opts.connection ? { connection: opts.connection } : {}) };
  const socket = ioClient(url, {
    path: `/socket.io${opts.subPath ?? ''}`,
    query,
    extraHeaders: { cookie: l.cookie },
    reconnection: false,
    forceNew: true,
    timeout: 5000,
    ...opts,
  });
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', (err) => {
      socket.close();
      reject(err);
    });
  });
}

/** Collects events of one name on a Socket.IO client. */
export function collect(socket: Socket, event: string): unknown[][] {
  const got: unknown[][] = [];
  socket.on(event, (...args: unknown[]) => got.push(args));
  return got;
}

export interface PlainWs {
  ws: WebSocket;
  frames: any[];
}

/** A plain WebSocket at /websockets/<path>; rejects with `{status, body}` when refused before the upgrade. */
export function connectPlainWs(url: string, l: Login | null, opts: { path?: string; connection?: string; origin?: string; cookie?: string | null; session?: string | null; since?: string } = {}): Promise<PlainWs> {
  const q = new URLSearchParams();
  const session = opts.session === undefined ? l?.session : opts.session;
  if (session) q.set('session', session);
  if (opts.connection) q.set('connection', opts.connection);
  if (opts.since !== undefined) q.set('since', opts.since);
  const headers: Record<string, string> = {};
  const cookie = opts.cookie === undefined ? l?.cookie : opts.cookie;
  if (cookie) headers.cookie = cookie;
  if (opts.origin) headers.origin = opts.origin;
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/websockets${opts.path ?? '/push'}?${q}`, { headers });
  const frames: any[] = [];
  ws.on('message', (data) => frames.push(JSON.parse(String(data))));
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, frames }));
    ws.once('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c));
      res.on('end', () => reject(Object.assign(new Error(`refused ${res.statusCode}`), { status: res.statusCode, body: text ? JSON.parse(text) : null, headers: res.headers })));
    });
    ws.once('error', (e) => reject(e));
  });
}

/** A plain WebSocket upgrade: 'open' (then closed) or the refusal's status and JSON body. */
export function tryUpgrade(url: string, l: Login, o: { localAddress?: string; headers?: Record<string, string>; path?: string } = {}): Promise<'open' | { status: number; body: any }> {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/websockets/${o.path ?? 'ip'}?session=${l.session}`, { headers: { cookie: l.cookie, ...o.headers }, localAddress: o.localAddress });
  return new Promise((resolve, reject) => {
    ws.once('open', () => {
      ws.close();
      resolve('open');
    });
    ws.once('unexpected-response', (_q, res) => {
      let t = '';
      res.on('data', (c: Buffer) => (t += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(t) }));
    });
    ws.once('error', reject);
  });
}
