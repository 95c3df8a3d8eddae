/**
 * Messaging benchmark: tidings against a plain Socket.IO cluster (system A of
 * `bench/baseline-socketio-node.ts`), both in one invocation.
 *
 *   npm run build && node dist/bench/messaging.js        (or: npm run bench:messaging)
 *
 * Each system runs as two server processes (node 1 takes the publishes, node 2 holds the
 * connections) on its own fresh redis-server (free loopback port, never 6379). This process is
 * the client side (every socket.io-client 4.8 connection, transports: ['websocket']); a forked
 * child is the HTTP publisher. Server CPU = utime+stime from /proc/<pid>/stat of both nodes and
 * the redis-server; Redis is also reported on its own.
 *
 * Each round starts a fresh A cluster and a fresh tidings cluster and keeps both up:
 *  1. connect (A, then tidings): N idle connections to node 2 (tidings: POST /api/login once per
 *     user to node 1, then a Socket.IO connect to node 2 with the session and its cookie; A: a
 *     plain connect with auth.user). Server CPU per connect; node 2's RSS growth per connection
 *     (after a settle pause; also over the second half alone). tidings: the same sessions once
 *     more over the plain WebSocket endpoint (CPU only). Then all but users 1..1000 disconnect.
 *  2. unicast pairs: events to the 1,000 users, published to node 1 by HTTP POST with
 *     CONCURRENCY requests in flight (keep-alive); warm-up, then MEASURE_MS measured; the window
 *     runs from the first publish to the last delivery. tidings is measured in three
 *     remote-buffer settings, switched on the running cluster (POST /api/admin/reload), in a
 *     rotated order each round; every tidings measurement is paired with an A measurement taken
 *     right before or after it (alternating), so that drift of this shared machine hits both.
 *  3. latency: LAT_RATE msg/s for LAT_MS, publish-to-receive (the monotonic clock is shared by
 *     all processes of the machine).
 *  4. reference: server CPU per request of a no-op HTTP endpoint (A's node 1, POST /noop), same
 *     publisher: the floor any one-HTTP-request-per-event design pays per message.
 * Every delivery is checked: right user, no duplicates, none missing, no socket dropped. A broken
 * run throws instead of printing figures.
 *
 * Environment knobs (defaults in brackets): BENCH_ROUNDS [3], BENCH_IDLE [5000],
 * BENCH_MEASURE_MS [4000], BENCH_CPU_PROF=<dir> (server nodes write V8 CPU profiles there;
 * profiling slows them, so the figures of such a run are not comparable).
 */
import { fork, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { io, type Socket } from 'socket.io-client';
import WebSocket from 'ws';
import { cpuMs, freePort, httpRequest, killAllChildren, machineBusyMs, median, nowUs, percentile, rssKb, sleep, spawnLogged, startRedis, waitUntil, type Proc } from './bench-lib.js';
import type { PublisherCommand, PublisherReport, PublisherTarget } from './messaging-publisher.js';

const TIDINGS_MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url));
const BASELINE_MAIN = fileURLToPath(new URL('./baseline-socketio-node.js', import.meta.url));
const PUBLISHER_MAIN = fileURLToPath(new URL('./messaging-publisher.js', import.meta.url));

const int = (v: string | undefined, d: number): number => (v !== undefined && /^\d+$/.test(v) ? Number(v) : d);
const ROUNDS = int(process.env.BENCH_ROUNDS, 3);
const USERS = 1000;
/** Idle connections for the connect and RSS figures; users 1..USERS among them stay for the unicast runs. */
let IDLE = Math.max(USERS, int(process.env.BENCH_IDLE, 5000));
const CONCURRENCY = 64;
const WARM_MS = 1500;
const MEASURE_MS = int(process.env.BENCH_MEASURE_MS, 4000);
const LAT_RATE = 200;
const LAT_MS = 3000;
/** The first unicast after the connect phase warms up longer: the closed connections' garbage is collected then. */
const FIRST_WARM_MS = 4000;
const CONNECT_PARALLEL = 50;
const SETTLE_MS = 2500;
const PUSH_TOKEN = 'bench-push-token';
const ADMIN_TOKEN = 'bench-admin-token';
const EVENT = 'bench';

const REMOTE = 'com.openexchange.websockets.grizzly.remote.';
interface Variant {
  readonly id: string;
  readonly label: string;
  readonly props: Record<string, number>;
  readonly latency: boolean;
  /** Events per publish request (tidings' batch form); 1 when absent. */
  readonly batch?: number;
}
/** tidings' remote-buffer settings, measured on the same cluster (order rotated per round). Defaults: 1000 / 3000 / 500 (src/config/schema.ts). */
const VARIANTS: readonly Variant[] = [
  { id: 'T0', label: 'tidings, delayDuration=0', props: { [`${REMOTE}delayDuration`]: 0 }, latency: true },
  { id: 'T0b', label: 'tidings, delayDuration=0, 50 events per publish request', props: { [`${REMOTE}delayDuration`]: 0 }, latency: false, batch: 50 },
  { id: 'Td', label: 'tidings, default buffer (1000/3000/500 ms)', props: {}, latency: false },
];

// ---------------------------------------------------------------------------------------------
// Limits

function openFileLimit(): number {
  const r = spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' });
  const n = Number(r.stdout.trim());
  return Number.isFinite(n) ? n : 1024;
}
const FD_LIMIT = openFileLimit();
const notes: string[] = [];
if (IDLE + 500 > FD_LIMIT) {
  const was = IDLE;
  IDLE = Math.max(USERS, FD_LIMIT - 500);
  notes.push(`open-file limit ${FD_LIMIT}: idle connections reduced from ${was} to ${IDLE}`);
}

// ---------------------------------------------------------------------------------------------
// Servers

interface Cluster {
  readonly kind: 'A' | 'T';
  readonly redis: Proc;
  readonly nodes: readonly [Proc & { url: string }, Proc & { url: string }];
  readonly dir: string;
  stop(): Promise<void>;
}

/** BENCH_CPU_PROF=<dir>: every server node writes a V8 CPU profile there when it stops. */
const PROF_DIR = process.env.BENCH_CPU_PROF;
let profSeq = 0;

async function startNode(name: string, dir: string, script: string, args: string[], env: NodeJS.ProcessEnv, port: number, readyPath: string): Promise<Proc & { url: string }> {
  const prof = PROF_DIR ? ['--cpu-prof', '--cpu-prof-dir', PROF_DIR, '--cpu-prof-name', `${name}-${++profSeq}.cpuprofile`] : [];
  const p = spawnLogged(name, dir, process.execPath, [...prof, script, ...args], { PATH: process.env.PATH, ...env });
  const url = `http://127.0.0.1:${port}`;
  const agent = new Agent({ keepAlive: false });
  await waitUntil(`${name} ready at ${url}${readyPath}`, async () => (await httpRequest(agent, `${url}${readyPath}`, 'GET')).status === 200, 20_000, p);
  return Object.assign(p, { url });
}

async function startCluster(kind: 'A' | 'T', users: number, first: Variant): Promise<Cluster> {
  const dir = mkdtempSync(join(tmpdir(), `bench-messaging-${kind}-`));
  const redis = await startRedis(dir);
  const stopAll = async (nodes: Proc[]) => {
    await Promise.all(nodes.map((n) => n.stop()));
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const ports = [await freePort(), await freePort()];
    let nodes: [Proc & { url: string }, Proc & { url: string }];
    if (kind === 'A') {
      const start = (i: number) => startNode(`a-node${i + 1}`, dir, BASELINE_MAIN, [], { PORT: String(ports[i]), REDIS_URL: redis.url }, ports[i], '/health');
      nodes = [await start(0), await start(1)];
    } else {
      const cfg = join(dir, 'config');
      mkdirSync(cfg);
      writeFileSync(join(cfg, 'tidings.properties'), [
        `tidings.redis.url=${redis.url}`,
        `tidings.push.token=${PUSH_TOKEN}`,
        `tidings.admin.token=${ADMIN_TOKEN}`,
        'tidings.config.watch=false',
        'tidings.log.level=warn',
        // Only *failed* logins are limited (none here), and every user holds one connection:
        // the defaults (20 failures per IP, 8 connections per user) never throttle this bench.
        '',
      ].join('\n'));
      writeRemoteProps(cfg, first);
      const lines = ['contexts:', '  - id: 1', '    name: bench.example', 'users:'];
      for (let u = 1; u <= users; u++) lines.push(`  - { id: ${u}, context: 1, login: u${u}@bench.example, password: "{PLAIN}pw${u}" }`);
      writeFileSync(join(cfg, 'directory.yml'), lines.join('\n') + '\n');
      const start = (i: number) => startNode(`t-node${i + 1}`, dir, TIDINGS_MAIN, ['serve', '--config', cfg], { TIDINGS_NODE_ID: `bench-node${i + 1}`, TIDINGS_HTTP_PORT: String(ports[i]) }, ports[i], '/health/ready');
      nodes = [await start(0), await start(1)];
    }
    return { kind, redis, nodes, dir, stop: () => stopAll([...nodes]) };
  } catch (e) {
    await stopAll([]);
    throw e;
  }
}

function writeRemoteProps(cfg: string, v: Variant): void {
  writeFileSync(join(cfg, 'websockets.properties'), Object.entries(v.props).map(([k, val]) => `${k}=${val}`).join('\n') + '\n');
}

/** Switches tidings' remote-buffer settings: rewrite the file, reload the cluster, check both nodes. */
async function applyVariant(c: Cluster, v: Variant): Promise<void> {
  writeRemoteProps(join(c.dir, 'config'), v);
  const agent = new Agent({ keepAlive: false });
  const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
  const r = await httpRequest(agent, `${c.nodes[0].url}/api/admin/reload`, 'POST', '{}', auth);
  if (r.status !== 200) throw new Error(`reload failed: ${r.status} ${r.body}`);
  const want = { delayDuration: 1000, maxDelayDuration: 3000, timerFrequency: 500 } as Record<string, number>;
  for (const [k, val] of Object.entries(v.props)) want[k.slice(REMOTE.length)] = val;
  for (const n of c.nodes) {
    for (const [k, val] of Object.entries(want)) {
      await waitUntil(`${n.name}: ${k}=${val}`, async () => {
        const a = await httpRequest(agent, `${n.url}/api/admin/config?key=${REMOTE}${k}&context=1`, 'GET', undefined, auth);
        return a.status === 200 && (JSON.parse(a.body) as { value: unknown }).value === val;
      }, 5000);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Clients and the receiving side

interface PhaseStats {
  count: number;
  dups: number;
  seen: Uint8Array;
  lastUs: number;
  lat: number[] | null;
}

class Receiver {
  readonly phases = new Map<number, PhaseStats>();
  misrouted = 0;
  unexpectedDisconnects = 0;
  closing = false;

  phase(p: number, latency = false): PhaseStats {
    let s = this.phases.get(p);
    if (!s) this.phases.set(p, (s = { count: 0, dups: 0, seen: new Uint8Array(1 << 16), lastUs: 0, lat: latency ? [] : null }));
    return s;
  }

  onEvent(user: number, d: { p: number; s: number; u: number; t: number }): void {
    const now = nowUs();
    if (d.u !== user) this.misrouted++;
    const st = this.phase(d.p);
    if (d.s >= st.seen.length) {
      let n = st.seen.length;
      while (n <= d.s) n *= 2;
      const grown = new Uint8Array(n);
      grown.set(st.seen);
      st.seen = grown;
    }
    if (st.seen[d.s]) st.dups++;
    else st.seen[d.s] = 1;
    st.count++;
    st.lastUs = now;
    st.lat?.push((now - d.t) / 1000);
  }

  attach(socket: Socket, user: number): void {
    socket.on(EVENT, (d: { p: number; s: number; u: number; t: number }) => this.onEvent(user, d));
    socket.on('disconnect', () => {
      if (!this.closing) this.unexpectedDisconnects++;
    });
  }

  check(what: string): void {
    if (this.misrouted > 0) throw new Error(`${what}: ${this.misrouted} events reached a socket of another user`);
    if (this.unexpectedDisconnects > 0) throw new Error(`${what}: ${this.unexpectedDisconnects} sockets disconnected unexpectedly`);
    for (const [p, s] of this.phases) if (s.dups > 0) throw new Error(`${what}: phase ${p}: ${s.dups} duplicate deliveries`);
  }
}

interface Login {
  session: string;
  cookie: string;
}

function connectSocket(url: string, opts: { auth?: Record<string, string>; login?: Login }): Promise<Socket> {
  const socket = io(url, {
    path: '/socket.io',
    transports: ['websocket'],
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
      reject(new Error(`connect to ${url} failed: ${err.message}`));
    });
  });
}

async function login(agent: Agent, url: string, user: number): Promise<Login> {
  const r = await httpRequest(agent, `${url}/api/login`, 'POST', JSON.stringify({ login: `u${user}@bench.example`, password: `pw${user}` }));
  if (r.status !== 200) throw new Error(`login of u${user} failed: ${r.status} ${r.body}`);
  const setCookie = r.headers['set-cookie'];
  const cookie = (Array.isArray(setCookie) ? setCookie[0] : setCookie ?? '').split(';')[0];
  return { session: (JSON.parse(r.body) as { session: string }).session, cookie };
}

async function pool<T, R>(items: readonly T[], parallel: number, fn: (item: T) => Promise<R>): Promise<R[]> {
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

// ---------------------------------------------------------------------------------------------
// Publisher (a child process)

class Publisher {
  readonly child: ChildProcess;
  #waiting: ((m: unknown) => void) | null = null;
  #failed: ((e: Error) => void) | null = null;

  constructor() {
    this.child = fork(PUBLISHER_MAIN, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child.on('message', (m) => {
      const w = this.#waiting;
      this.#waiting = null;
      w?.(m);
    });
    this.child.on('exit', (code) => this.#failed?.(new Error(`the publisher process exited (${code})`)));
  }

  #ask<T>(c: PublisherCommand): Promise<T> {
    return new Promise((resolve, reject) => {
      this.#waiting = resolve as (m: unknown) => void;
      this.#failed = reject;
      this.child.send(c);
    });
  }

  target(target: PublisherTarget): Promise<void> {
    return this.#ask({ cmd: 'target', target, users: USERS, concurrency: CONCURRENCY });
  }

  run(c: Extract<PublisherCommand, { cmd: 'run' }>): Promise<PublisherReport> {
    return this.#ask(c);
  }

  exit(): void {
    if (this.child.connected) this.child.send({ cmd: 'exit' });
  }
}

// ---------------------------------------------------------------------------------------------
// Measurements

let nextPhase = 1;

interface ConnectFigures {
  n: number;
  /** Server CPU per login (tidings only), ms. */
  loginMs: number;
  /** Server CPU per Socket.IO connect, ms. */
  connectMs: number;
  /** login + connect, ms: the "authenticated connect". */
  totalMs: number;
  redisMs: number;
  rssBeforeKb: number;
  rssAfterKb: number;
  rssPerConnKb: number;
  /** RSS growth per connection over the second half of the connections only. */
  rssSecondHalfKb: number;
  wallMs: number;
  /** tidings only: the same sessions again over the plain WebSocket endpoint /websockets/bench. */
  plainConnectMs: number;
}

interface UnicastFigures {
  delivered: number;
  windowMs: number;
  publishMs: number;
  tailMs: number;
  cpuUs: number;
  node1Us: number;
  node2Us: number;
  redisUs: number;
  clientUs: number;
  /** Delivered / (last delivery − first publish). */
  rate: number;
  /** Delivered / publishing time (what the publisher sustained, every event delivered). */
  publishRate: number;
  busyPct: number;
  /** Machine CPU used by processes other than this benchmark's during the window, % of all cores. */
  foreignPct: number;
}

interface LatencyFigures {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

const serverPids = (c: Cluster): number[] => [c.nodes[0].pid, c.nodes[1].pid, c.redis.pid];
const snap = (pids: number[]): number[] => pids.map(cpuMs);
const delta = (a: number[], b: number[]): number[] => b.map((x, i) => x - a[i]);
const sum = (xs: number[]): number => xs.reduce((s, x) => s + x, 0);

async function waitDelivered(rx: Receiver, r: PublisherReport, what: string, timeoutMs: number): Promise<PhaseStats> {
  if (r.errors > 0) throw new Error(`${what}: ${r.errors} publishes failed; first: ${r.firstError}`);
  const st = rx.phase(r.phase);
  const deadline = Date.now() + timeoutMs;
  while (st.count < r.sent) {
    if (Date.now() > deadline) throw new Error(`${what}: delivered ${st.count} of ${r.sent} events within ${timeoutMs} ms`);
    await sleep(5);
  }
  if (st.count > r.sent || st.dups > 0) throw new Error(`${what}: ${st.count} deliveries for ${r.sent} publishes (${st.dups} duplicates)`);
  rx.check(what);
  return st;
}

async function measureConnect(c: Cluster, rx: Receiver, sockets: Map<number, Socket>): Promise<ConnectFigures> {
  const node2 = c.nodes[1];
  const pids = serverPids(c);
  const users = Array.from({ length: IDLE }, (_, i) => i + 1);
  const t0 = Date.now();
  let loginMs = 0;
  let redisLogin = 0;
  let logins: Login[] = [];
  if (c.kind === 'T') {
    const agent = new Agent({ keepAlive: true, maxSockets: 32 });
    const a = snap(pids);
    // Logins go to node 1 (sessions live in Redis, any node accepts them): node 2's RSS then
    // grows by the connections only, not by the garbage of the login requests.
    logins = await pool(users, 32, (u) => login(agent, c.nodes[0].url, u));
    const d = delta(a, snap(pids));
    loginMs = sum(d) / IDLE;
    redisLogin = d[2];
    agent.destroy();
  }
  await sleep(SETTLE_MS);
  const rssBeforeKb = rssKb(node2.pid);
  // In two halves, with the RSS in between: the second half's growth is the marginal cost,
  // once the heap slack a process starts with (tidings' start-up parses the directory) is used up.
  const half = IDLE >> 1;
  const d = [0, 0, 0];
  let rssHalfKb = 0;
  for (const part of [users.slice(0, half), users.slice(half)]) {
    if (part[0] !== 1) {
      await sleep(SETTLE_MS);
      rssHalfKb = rssKb(node2.pid);
    }
    const a = snap(pids);
    await pool(part, CONNECT_PARALLEL, async (u) => {
      const s = await connectSocket(node2.url, c.kind === 'T' ? { login: logins[u - 1] } : { auth: { user: String(u) } });
      rx.attach(s, u);
      sockets.set(u, s);
    });
    delta(a, snap(pids)).forEach((x, i) => (d[i] += x));
  }
  const wallMs = Date.now() - t0;
  await sleep(SETTLE_MS);
  const rssAfterKb = rssKb(node2.pid);
  const connectMs = sum(d) / IDLE;
  let plainConnectMs = NaN;
  if (c.kind === 'T') {
    // A second connection per user (the per-user cap is 8) over the plain WebSocket endpoint.
    // (No RSS figure for these: node 2's heap already has the slack the first connections left.)
    const b = snap(pids);
    const plain = await pool(users, CONNECT_PARALLEL, (u) => connectPlain(node2.url, logins[u - 1]));
    plainConnectMs = sum(delta(b, snap(pids))) / IDLE;
    for (const ws of plain) ws.close();
  }
  return {
    n: IDLE, loginMs, connectMs, totalMs: loginMs + connectMs, redisMs: (redisLogin + d[2]) / IDLE,
    rssBeforeKb, rssAfterKb, rssPerConnKb: (rssAfterKb - rssBeforeKb) / IDLE, rssSecondHalfKb: (rssAfterKb - rssHalfKb) / (IDLE - half), wallMs, plainConnectMs,
  };
}

function connectPlain(url: string, l: Login): Promise<WebSocket> {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/websockets/bench?session=${l.session}`, { headers: { cookie: l.cookie }, perMessageDeflate: false });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`plain WebSocket refused: ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

async function measureUnicast(c: Cluster, rx: Receiver, pub: Publisher, holdMs: number, what: string, warmMs: number): Promise<UnicastFigures> {
  const pids = serverPids(c);
  const clientPids = [process.pid, pub.child.pid!];
  const warm = await pub.run({ cmd: 'run', phase: nextPhase++, mode: 'max', durationMs: warmMs });
  await waitDelivered(rx, warm, `${what} warm-up`, holdMs + 15_000);
  await sleep(300);
  const a = snap(pids);
  const ca = snap(clientPids);
  const ma = machineBusyMs();
  const r = await pub.run({ cmd: 'run', phase: nextPhase++, mode: 'max', durationMs: MEASURE_MS });
  const st = await waitDelivered(rx, r, what, holdMs + 15_000);
  const d = delta(a, snap(pids));
  const cd = delta(ca, snap(clientPids));
  const machine = machineBusyMs() - ma;
  const windowMs = (st.lastUs - r.startUs) / 1000;
  const n = st.count;
  return {
    delivered: n,
    windowMs,
    publishMs: (r.endUs - r.startUs) / 1000,
    tailMs: (st.lastUs - r.endUs) / 1000,
    cpuUs: (sum(d) * 1000) / n,
    node1Us: (d[0] * 1000) / n,
    node2Us: (d[1] * 1000) / n,
    redisUs: (d[2] * 1000) / n,
    clientUs: (sum(cd) * 1000) / n,
    rate: n / (windowMs / 1000),
    publishRate: n / ((r.endUs - r.startUs) / 1e6),
    busyPct: ((sum(d) + sum(cd)) / (windowMs * cpus().length)) * 100,
    foreignPct: (Math.max(0, machine - sum(d) - sum(cd)) / (windowMs * cpus().length)) * 100,
  };
}

/** Node 1 of system A answering POST /noop: server CPU per bare HTTP request from the same publisher. */
async function measureHttpFloor(c: Cluster, pub: Publisher): Promise<number> {
  await pub.target({ kind: 'noop', url: c.nodes[0].url });
  const warm = await pub.run({ cmd: 'run', phase: nextPhase++, mode: 'max', durationMs: WARM_MS });
  if (warm.errors > 0) throw new Error(`no-op HTTP: ${warm.firstError}`);
  const a = cpuMs(c.nodes[0].pid);
  const r = await pub.run({ cmd: 'run', phase: nextPhase++, mode: 'max', durationMs: MEASURE_MS });
  if (r.errors > 0) throw new Error(`no-op HTTP: ${r.firstError}`);
  return ((cpuMs(c.nodes[0].pid) - a) * 1000) / r.sent;
}

async function measureLatency(rx: Receiver, pub: Publisher, holdMs: number, what: string): Promise<LatencyFigures> {
  const phase = nextPhase++;
  rx.phase(phase, true);
  const r = await pub.run({ cmd: 'run', phase, mode: 'rate', rate: LAT_RATE, durationMs: LAT_MS });
  const st = await waitDelivered(rx, r, what, holdMs + 15_000);
  const lat = [...st.lat!].sort((x, y) => x - y);
  return { n: lat.length, p50: percentile(lat, 50), p99: percentile(lat, 99), max: lat[lat.length - 1] };
}

/** Waits (at most QUIET_WAIT_MS) until other processes use under 20 % of the machine for a second. */
const QUIET_WAIT_MS = 60_000;
async function waitQuiet(log: (s: string) => void): Promise<number> {
  const deadline = Date.now() + QUIET_WAIT_MS;
  for (;;) {
    const m0 = machineBusyMs();
    const t0 = Date.now();
    await sleep(1000);
    const pct = ((machineBusyMs() - m0) / ((Date.now() - t0) * cpus().length)) * 100;
    if (pct < 20) return pct;
    if (Date.now() > deadline) {
      log(`  machine still busy (${pct.toFixed(0)} % of all cores used by other processes); measuring anyway`);
      return pct;
    }
    log(`  machine busy (${pct.toFixed(0)} % of all cores used by other processes); waiting`);
    await sleep(4000);
  }
}

/** A cluster with its connect figures, users 1..USERS connected to node 2, ready for unicast runs. */
interface Live {
  readonly kind: 'A' | 'T';
  readonly c: Cluster;
  readonly rx: Receiver;
  readonly sockets: Map<number, Socket>;
  readonly connect: ConnectFigures;
  warmed: boolean;
}

async function bringUp(kind: 'A' | 'T', first: Variant, log: (s: string) => void): Promise<Live> {
  const c = await startCluster(kind, IDLE, first);
  const rx = new Receiver();
  const sockets = new Map<number, Socket>();
  try {
    const connect = await measureConnect(c, rx, sockets);
    log(`  ${kind} connect: ${connect.n} in ${(connect.wallMs / 1000).toFixed(1)} s, ${connect.totalMs.toFixed(3)} ms CPU each, RSS +${connect.rssPerConnKb.toFixed(1)} KB each (2nd half ${connect.rssSecondHalfKb.toFixed(1)})${kind === 'T' ? `; plain WebSocket ${connect.plainConnectMs.toFixed(3)} ms` : ''}`);
    // Unicast: users 1..USERS keep their one connection on node 2.
    rx.closing = true;
    for (const [u, s] of sockets) {
      if (u > USERS) {
        s.close();
        sockets.delete(u);
      }
    }
    await sleep(2000);
    rx.closing = false;
    return { kind, c, rx, sockets, connect, warmed: false };
  } catch (e) {
    rx.closing = true;
    for (const s of sockets.values()) s.close();
    await c.stop();
    throw e;
  }
}

async function tearDown(l: Live): Promise<void> {
  l.rx.closing = true;
  for (const s of l.sockets.values()) s.close();
  await l.c.stop();
}

function holdOf(l: Live, v: Variant): number {
  return l.kind === 'A' ? 0 : (v.props[`${REMOTE}maxDelayDuration`] ?? 3000) + (v.props[`${REMOTE}timerFrequency`] ?? 500);
}

async function targetOf(l: Live, pub: Publisher, v?: Variant): Promise<void> {
  await pub.target(l.kind === 'A' ? { kind: 'socketio', url: l.c.nodes[0].url } : { kind: 'tidings', url: l.c.nodes[0].url, token: PUSH_TOKEN, context: 1, batch: v?.batch ?? 1 });
}

async function unicastOn(l: Live, v: Variant, pub: Publisher, log: (s: string) => void): Promise<UnicastFigures> {
  await targetOf(l, pub, v);
  const u = await measureUnicast(l.c, l.rx, pub, holdOf(l, v), `${v.id} unicast`, l.warmed ? WARM_MS : FIRST_WARM_MS);
  l.warmed = true;
  log(`  ${v.id} unicast: ${u.delivered} delivered, ${Math.round(u.rate)}/s, ${u.cpuUs.toFixed(1)} µs CPU/msg (node1 ${u.node1Us.toFixed(1)}, node2 ${u.node2Us.toFixed(1)}, redis ${u.redisUs.toFixed(1)}), tail ${u.tailMs.toFixed(0)} ms, other CPU ${u.foreignPct.toFixed(0)} %`);
  return u;
}

async function latencyOn(l: Live, v: Variant, pub: Publisher, log: (s: string) => void): Promise<LatencyFigures> {
  await targetOf(l, pub);
  const r = await measureLatency(l.rx, pub, holdOf(l, v), `${v.id} latency`);
  log(`  ${v.id} latency: p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms (n=${r.n})`);
  return r;
}

const SYSTEM_A: Variant = { id: 'A', label: 'Socket.IO', props: {}, latency: true };

/** One tidings figure and the A figure measured right next to it. */
interface Pair {
  readonly variant: string;
  readonly aFirst: boolean;
  readonly a: UnicastFigures;
  readonly t: UnicastFigures;
}

interface Round {
  readonly connectA: ConnectFigures;
  readonly connectT: ConnectFigures;
  readonly pairs: Pair[];
  readonly latency: Record<string, LatencyFigures>;
  readonly httpFloorUs: number;
}

/**
 * One round: a fresh A cluster and a fresh tidings cluster (each with its own redis-server), both
 * up for the whole round; connect figures of each; then one unicast pair per tidings setting
 * (A next to T, alternating which goes first), tidings' settings in a rotated order.
 */
async function runRound(round: number, pub: Publisher, log: (s: string) => void): Promise<Round> {
  await waitQuiet(log);
  const order = VARIANTS.map((_, i) => VARIANTS[(i + round - 1) % VARIANTS.length]);
  const A = await bringUp('A', SYSTEM_A, log);
  let T: Live | undefined;
  try {
    T = await bringUp('T', order[0], log);
    const pairs: Pair[] = [];
    const latency: Record<string, LatencyFigures> = {};
    for (const [i, v] of order.entries()) {
      if (i > 0) await applyVariant(T.c, v);
      const aFirst = i % 2 === 0;
      let a: UnicastFigures;
      let t: UnicastFigures;
      if (aFirst) {
        a = await unicastOn(A, SYSTEM_A, pub, log);
        t = await unicastOn(T, v, pub, log);
      } else {
        t = await unicastOn(T, v, pub, log);
        a = await unicastOn(A, SYSTEM_A, pub, log);
      }
      pairs.push({ variant: v.id, aFirst, a, t });
      if (i === 0) latency.A = await latencyOn(A, SYSTEM_A, pub, log);
      if (v.latency) latency[v.id] = await latencyOn(T, v, pub, log);
    }
    await sleep(300);
    A.rx.check('A');
    T.rx.check('tidings');
    const httpFloorUs = await measureHttpFloor(A.c, pub);
    log(`  no-op HTTP request: ${httpFloorUs.toFixed(1)} µs server CPU`);
    return { connectA: A.connect, connectT: T.connect, pairs, latency, httpFloorUs };
  } finally {
    await Promise.all([tearDown(A), T ? tearDown(T) : Promise.resolve()]);
  }
}

// ---------------------------------------------------------------------------------------------
// Report

const f1 = (x: number): string => x.toFixed(1);
const f2 = (x: number): string => x.toFixed(2);
const f3 = (x: number): string => x.toFixed(3);
const int0 = (x: number): string => Math.round(x).toLocaleString('en-US');
const times = (x: number): string => (Number.isFinite(x) ? `${x.toFixed(2)}×` : '');

function report(rounds: Round[], wallS: number): string {
  const out: string[] = [];
  const ids = VARIANTS.map((v) => v.id);
  const allA = rounds.flatMap((r) => r.pairs.map((p) => p.a));
  const tOf = (id: string) => rounds.map((r) => r.pairs.find((p) => p.variant === id)!);
  const fmtOr = (x: number, fmt: (x: number) => string) => (Number.isFinite(x) ? fmt(x) : '-');
  const head = [`figure (median)`, `A: Socket.IO cluster`, ...VARIANTS.flatMap((v) => [v.label, `${v.id}/A`]), 'target'];
  out.push(`| ${head.join(' | ')} |`);
  out.push(`|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`);
  // Unicast rows: A = median of all its measurements; T = median over rounds; ratio = median of per-pair ratios.
  const uRow = (name: string, k: keyof UnicastFigures, fmt: (x: number) => string, target: string, withRatio = true) => {
    const cells = [name, fmt(median(allA.map((a) => a[k])))];
    for (const id of ids) {
      const ps = tOf(id);
      cells.push(fmt(median(ps.map((p) => p.t[k]))), withRatio ? times(median(ps.map((p) => p.t[k] / p.a[k]))) : '');
    }
    cells.push(target);
    out.push(`| ${cells.join(' | ')} |`);
  };
  uRow('server CPU per unicast message (µs)', 'cpuUs', f1, '≤ 60 µs');
  uRow('… of which in Redis (µs)', 'redisUs', f1, '');
  uRow('… node 1, publish side (µs)', 'node1Us', f1, '');
  uRow('… node 2, delivery side (µs)', 'node2Us', f1, '');
  out.push(`| ${['reference: no-op HTTP request to a Node server, same publisher (µs)', f1(median(rounds.map((r) => r.httpFloorUs))), ...ids.flatMap(() => ['-', '']), ''].join(' | ')} |`);
  uRow('unicast deliveries/s (first publish → last delivery)', 'rate', int0, '≥ 2× A');
  uRow('unicast publishes/s sustained (all delivered)', 'publishRate', int0, '');
  uRow('drain tail after the last publish (ms)', 'tailMs', (x) => Math.max(0, x).toFixed(0), '', false);
  const lRow = (name: string, k: keyof LatencyFigures, target: string) => {
    const a = median(rounds.map((r) => r.latency.A[k]));
    const cells = [name, f2(a)];
    for (const id of ids) {
      const xs = rounds.map((r) => r.latency[id]?.[k]).filter((x): x is number => x !== undefined);
      const t = xs.length ? median(xs) : NaN;
      cells.push(fmtOr(t, f2), xs.length ? times(t / a) : '');
    }
    cells.push(target);
    out.push(`| ${cells.join(' | ')} |`);
  };
  lRow(`cross-node latency p50 at ${LAT_RATE} msg/s (ms)`, 'p50', '');
  lRow(`cross-node latency p99 at ${LAT_RATE} msg/s (ms)`, 'p99', '≤ 5 ms (delayDuration=0)');
  const cRow = (name: string, k: keyof ConnectFigures, fmt: (x: number) => string, target: string, withRatio = true) => {
    const a = median(rounds.map((r) => r.connectA[k]));
    const t = median(rounds.map((r) => r.connectT[k]));
    const cells = [name, fmtOr(a, fmt), fmtOr(t, fmt), withRatio ? times(median(rounds.map((r) => r.connectT[k] / r.connectA[k]))) : ''];
    for (let i = 1; i < ids.length; i++) cells.push('〃', '');
    cells.push(target);
    out.push(`| ${cells.join(' | ')} |`);
  };
  cRow('server CPU per (authenticated) connect (ms)', 'totalMs', f3, '≤ 0.3 ms');
  cRow('… login, tidings only (ms)', 'loginMs', f3, '', false);
  cRow('… Socket.IO connect (ms)', 'connectMs', f3, '');
  cRow('… of which in Redis (ms)', 'redisMs', f3, '', false);
  cRow(`RSS per idle connection, ${IDLE} on one node (KB)`, 'rssPerConnKb', f1, '≤ 11 KB');
  cRow(`… marginal: growth over the second ${IDLE - (IDLE >> 1)} connections (KB)`, 'rssSecondHalfKb', f1, '');
  cRow('tidings plain WebSocket (/websockets/…): CPU per connect, login excluded (ms)', 'plainConnectMs', f3, '', false);
  out.push('');
  out.push(`A's unicast figures: median of all ${allA.length} A measurements (one next to each tidings measurement). tidings: median over ${rounds.length} rounds. Ratios: median of the per-pair ratios (each tidings figure over the A figure measured right before or after it). Connect and RSS: once per cluster and round; 〃 = the same tidings cluster as the first tidings column (these figures do not depend on the buffer settings). - = not measured.`);
  out.push(`${rounds.length} rounds, ${USERS} users (one connection each on node 2), publishes to node 1 with ${CONCURRENCY} in flight; ${WARM_MS / 1000} s warm-up (${FIRST_WARM_MS / 1000} s for a cluster's first) + ${MEASURE_MS / 1000} s measured per unicast figure; latency ${LAT_MS / 1000} s at ${LAT_RATE}/s; wall time ${wallS.toFixed(0)} s.`);
  out.push('');
  out.push('Per round, in the order measured:');
  out.push('');
  out.push('| round | system | server CPU/msg µs (node1 / node2 / redis) | T/A | client CPU/msg µs | deliveries/s | publishes/s | tail ms | bench busy | other busy |');
  out.push('|---|---|---|---:|---:|---:|---:|---:|---:|---:|');
  rounds.forEach((r, i) => {
    const line = (sys: string, u: UnicastFigures, ratio: string) =>
      out.push(`| ${i + 1} | ${sys} | ${f1(u.cpuUs)} (${f1(u.node1Us)} / ${f1(u.node2Us)} / ${f1(u.redisUs)}) | ${ratio} | ${f1(u.clientUs)} | ${int0(u.rate)} | ${int0(u.publishRate)} | ${Math.max(0, u.tailMs).toFixed(0)} | ${u.busyPct.toFixed(0)} % | ${u.foreignPct.toFixed(0)} % |`);
    for (const p of r.pairs) {
      const ratio = times(p.t.cpuUs / p.a.cpuUs);
      if (p.aFirst) {
        line('A', p.a, '');
        line(p.variant, p.t, ratio);
      } else {
        line(p.variant, p.t, ratio);
        line('A', p.a, '');
      }
    }
  });
  out.push('');
  out.push('| round | ' + ['A', ...ids.filter((id) => VARIANTS.find((v) => v.id === id)!.latency)].map((id) => `${id} latency p50 / p99 ms`).join(' | ') + ' | no-op HTTP µs |');
  out.push('|---|' + ['A', ...ids.filter((id) => VARIANTS.find((v) => v.id === id)!.latency)].map(() => '---:|').join('') + '---:|');
  rounds.forEach((r, i) => {
    const cells = ['A', ...ids.filter((id) => VARIANTS.find((v) => v.id === id)!.latency)].map((id) => `${f2(r.latency[id].p50)} / ${f2(r.latency[id].p99)}`);
    out.push(`| ${i + 1} | ${cells.join(' | ')} | ${f1(r.httpFloorUs)} |`);
  });
  out.push('');
  out.push(`| round | system | connects | login ms | connect ms | total ms | redis ms | RSS before → after (MB) | RSS/conn KB | 2nd half KB | plain WS connect ms | wall s |`);
  out.push('|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|');
  rounds.forEach((r, i) => {
    for (const [sys, c] of [['A', r.connectA], ['T', r.connectT]] as const) {
      out.push(`| ${i + 1} | ${sys} | ${c.n} | ${f3(c.loginMs)} | ${f3(c.connectMs)} | ${f3(c.totalMs)} | ${f3(c.redisMs)} | ${f1(c.rssBeforeKb / 1024)} → ${f1(c.rssAfterKb / 1024)} | ${f1(c.rssPerConnKb)} | ${f1(c.rssSecondHalfKb)} | ${fmtOr(c.plainConnectMs, f3)} | ${f1(c.wallMs / 1000)} |`);
    }
  });
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const t0 = Date.now();
  const log = (s: string) => process.stderr.write(`${s}\n`);
  log(`node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, open-file limit ${FD_LIMIT}`);
  for (const n of notes) log(`note: ${n}`);
  const pub = new Publisher();
  const rounds: Round[] = [];
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      log(`round ${round}`);
      rounds.push(await runRound(round, pub, log));
    }
  } finally {
    pub.exit();
  }
  const wallS = (Date.now() - t0) / 1000;
  console.log(`node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}; socket.io 4.8 + @socket.io/redis-adapter 8.3 (A) vs tidings; one redis-server per system`);
  for (const n of notes) console.log(`note: ${n}`);
  console.log('');
  console.log(report(rounds, wallS));
}

process.on('SIGINT', () => {
  killAllChildren();
  process.exit(130);
});

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    killAllChildren();
    process.exit(1);
  },
);
