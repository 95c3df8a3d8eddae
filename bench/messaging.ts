/**
 * Messaging benchmark: tidings against every baseline, all started and measured in one
 * invocation, interleaved and paired, so that the drift of a shared machine hits both sides of
 * every ratio.
 *
 *   npm run bench                   full run (≈ 7 min), results to bench/results/messaging.md
 *                                   and the table to docs/benchmarks.md
 *   npm run bench -- --quick        short run for development (bench/results/messaging-quick.md)
 *   npm run bench -- --syscalls     also count syscalls per delivered event (perf or strace)
 *
 * Systems (each server on free loopback ports; each cluster on its own fresh redis-server):
 *  A   a plain Socket.IO 4.8 cluster, 2 nodes, @socket.io/redis-adapter (bench/baseline-socketio-node.ts)
 *  T   tidings, 2 nodes on one Redis, measured with Socket.IO clients and with plain WebSocket clients
 *  R   a raw `ws` server in one process, the floor (bench/baseline-raw-ws.ts)
 *  N   Nchan on nginx, memory store, one nginx          (bench/nchan.ts)
 *  NR  Nchan on nginx, Redis store, 2 nginx on one Redis
 * Node 1 (nginx 1) of a system takes the publishes, node 2 holds the connections: every event
 * crosses nodes (R and N have one process). This process holds the measured connections and
 * checks every delivery (right user, none missing, none twice, no socket dropped); a forked child
 * publishes over HTTP; connection holders (bench/conn-holder.ts) hold the idle connections of the
 * connect and memory figures. Server CPU = utime + stime (/proc/<pid>/stat) of every server
 * process of the system (nodes and Redis), per delivered event.
 *
 * Per round: all five systems start; the connect and memory phase of A and T (N_IDLE idle
 * connections, in round 1 also N_BIG); then the measured clients connect and these pairs run,
 * alternating which side goes first, in an order rotated per round:
 *   T-sio  vs A    cross-node flood, one event per request (tidings delayDuration=0)
 *   T-ws   vs R    the same, plain WebSocket clients against the raw ws floor
 *   T-b50  vs A    tidings' JSON-array publish of 50 events per request vs A's one per request
 *   T-mail vs A    mail-like bursts (a few events per user within the coalescing window) at a
 *                  fixed rate, tidings with the default remote buffer (1000/3000/500 ms)
 *   N, NR          the same flood as a reference
 * then latency at LAT_RATE/s (websocket: every system; polling: A and T, and tidings' polling
 * through a balancer, pinned and round-robin: the relayed poll), and a no-op HTTP request as the
 * floor of a one-request-per-event design.
 *
 * Knobs: --quick / BENCH_QUICK=1; --syscalls / BENCH_SYSCALLS=1; BENCH_ROUNDS [2];
 * BENCH_IDLE [5000]; BENCH_BIG [20000, capped by the open-file limit; 0 = skip];
 * BENCH_MEASURE_MS [4000]; BENCH_CPU_PROF=<dir> (tidings' nodes write V8 CPU profiles there;
 * profiling slows them, so such a run's figures are not comparable). BENCH_NO_WRITE=1 prints only.
 */
import { fork, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Socket } from 'socket.io-client';
import type WebSocket from 'ws';
import {
  cpuMs, freePort, httpRequest, killAllChildren, machineBusyMs, median, nowUs, percentile, raisedFdLimit, redisCounters, redisDelta, rssKb,
  sleep, spawnLogged, startRedis, waitUntil, withFdLimit, type Proc, type RedisDelta,
} from './bench-lib.js';
import { connectSocketIo, connectWebSocket, login, pool, type Login, type Transport } from './clients.js';
import type { HolderCommand, HolderReply } from './conn-holder.js';
import type { PublisherCommand, PublisherReport, PublisherTarget, UserRange } from './messaging-publisher.js';
import { startBalancer, type Balancer } from './balancer.js';
import { ensureNchan, nchanVersions, startNginx } from './nchan.js';
import { countSyscalls, syscallTool, type SyscallCounts, type SyscallProbe } from './syscall-count.js';

const here = dirname(fileURLToPath(import.meta.url));
const TIDINGS_MAIN = join(here, '../src/main.js');
const BASELINE_MAIN = join(here, 'baseline-socketio-node.js');
const RAW_WS_MAIN = join(here, 'baseline-raw-ws.js');
const PUBLISHER_MAIN = join(here, 'messaging-publisher.js');
const HOLDER_MAIN = join(here, 'conn-holder.js');
const GC_ON_SIGNAL = pathToFileURL(join(here, 'gc-on-signal.js')).href;
/** The checkout (dist/bench/ → ../..). */
const ROOT = join(here, '../..');

const argv = new Set(process.argv.slice(2));
const QUICK = argv.has('--quick') || process.env.BENCH_QUICK === '1';
const SYSCALLS = argv.has('--syscalls') || process.env.BENCH_SYSCALLS === '1';
const int = (v: string | undefined, d: number): number => (v !== undefined && /^\d+$/.test(v) ? Number(v) : d);
const ROUNDS = int(process.env.BENCH_ROUNDS, QUICK || SYSCALLS ? 1 : 2);
const USERS = 1000;
const MEASURE_MS = int(process.env.BENCH_MEASURE_MS, QUICK ? 1500 : 4000);
const WARM_MS = QUICK ? 600 : 1500;
/** A system's first measurement warms up longer: the connect phase's garbage is collected then. */
const FIRST_WARM_MS = QUICK ? 1500 : 4000;
const CONCURRENCY = 64;
const BATCH = 50;
const LAT_RATE = 200;
const LAT_MS = QUICK ? 1500 : 3000;
/** Polling clients (the latency figure over Engine.IO long-polling). */
const POLL_USERS = 100;
/** Mail-like load: bursts per second, each one event per request at these offsets (ms) for one user. */
const MAIL_BURSTS = 500;
const MAIL_OFFSETS = [0, 40, 150, 400] as const;
const CONNECT_PARALLEL = 50;
const SETTLE_MS = QUICK ? 1500 : 2500;
const PUSH_TOKEN = 'bench-push-token';
const ADMIN_TOKEN = 'bench-admin-token';
const EVENT = 'bench';

/** User ranges of the measured clients (distinct, so no event reaches two client kinds). */
const R_SIO: UserRange = { base: 1, users: USERS };
const R_WS: UserRange = { base: USERS + 1, users: USERS };
const R_POLL: UserRange = { base: 2 * USERS + 1, users: POLL_USERS };
/** tidings polling through a balancer: pinned to node 2, and round-robin over both nodes (relayed polls). */
const R_POLL_PINNED: UserRange = { base: 2 * USERS + POLL_USERS + 1, users: POLL_USERS };
const R_POLL_RR: UserRange = { base: 2 * USERS + 2 * POLL_USERS + 1, users: POLL_USERS };

// ---------------------------------------------------------------------------------------------
// Limits

const FD_LIMIT = raisedFdLimit();
const notes: string[] = [];
const N_IDLE = Math.max(USERS, int(process.env.BENCH_IDLE, QUICK ? 1000 : 5000));
/** A server needs a few dozen files besides its connections (listeners, Redis, logs, epoll, pipes). */
const N_BIG = Math.min(int(process.env.BENCH_BIG, QUICK ? 0 : 20_000), FD_LIMIT - 150);
if (N_BIG > 0 && N_BIG < int(process.env.BENCH_BIG, 20_000)) notes.push(`open-file limit ${FD_LIMIT} (hard limit; cannot be raised here): the 20,000-connection memory figure is measured at ${N_BIG.toLocaleString('en-US')} connections`);
/** Connections per holder process (each also needs files of its own). */
const PER_HOLDER = Math.max(1000, Math.min(9000, FD_LIMIT - 500));
const TIDINGS_USERS = Math.max(N_IDLE, N_BIG, 2 * USERS + 3 * POLL_USERS);

const REMOTE = 'com.openexchange.websockets.grizzly.remote.';
const DELAY0 = { [`${REMOTE}delayDuration`]: 0 } as Record<string, number>;
const DEFAULT_BUFFER = {} as Record<string, number>;

// ---------------------------------------------------------------------------------------------
// Systems

type SysId = 'A' | 'T' | 'R' | 'N' | 'NR';
interface Sys {
  readonly id: SysId;
  /** Every server process: nodes (nginx) first, then the redis-server. */
  readonly procs: readonly Proc[];
  readonly pubUrl: string;
  readonly subUrl: string;
  readonly redisPort: number | null;
  readonly dir: string;
  /** Node 2 (where the connections are). */
  readonly holder: Proc;
  stop(): Promise<void>;
}

const PROF_DIR = process.env.BENCH_CPU_PROF;
let profSeq = 0;

async function startNode(name: string, dir: string, script: string, args: string[], env: NodeJS.ProcessEnv, port: number, readyPath: string, prof = false): Promise<Proc & { url: string }> {
  const flags = ['--expose-gc', '--import', GC_ON_SIGNAL, ...(prof && PROF_DIR ? ['--cpu-prof', '--cpu-prof-dir', PROF_DIR, '--cpu-prof-name', `${name}-${++profSeq}.cpuprofile`] : [])];
  const p = spawnLogged(name, dir, process.execPath, [...flags, script, ...args], { PATH: process.env.PATH, ...env });
  const url = `http://127.0.0.1:${port}`;
  const agent = new Agent({ keepAlive: false });
  await waitUntil(`${name} ready at ${url}${readyPath}`, async () => (await httpRequest(agent, `${url}${readyPath}`, 'GET')).status === 200, 20_000, p);
  return Object.assign(p, { url });
}

function sysOf(id: SysId, dir: string, nodes: readonly (Proc & { url: string })[], redis: (Proc & { port: number }) | null): Sys {
  const procs = [...nodes, ...(redis ? [redis] : [])];
  return {
    id, procs, dir, pubUrl: nodes[0].url, subUrl: nodes[nodes.length - 1].url, redisPort: redis?.port ?? null, holder: nodes[nodes.length - 1],
    async stop() {
      await Promise.all(nodes.map((n) => n.stop()));
      await redis?.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function startSystem(id: SysId): Promise<Sys> {
  const dir = mkdtempSync(join(tmpdir(), `bench-messaging-${id}-`));
  const started: Proc[] = [];
  try {
    const redis = id === 'A' || id === 'T' || id === 'NR' ? await startRedis(dir) : null;
    if (redis) started.push(redis);
    let nodes: (Proc & { url: string })[];
    if (id === 'A') {
      nodes = [];
      for (const i of [1, 2]) {
        const port = await freePort();
        nodes.push(await startNode(`a-node${i}`, dir, BASELINE_MAIN, [], { PORT: String(port), REDIS_URL: redis!.url }, port, '/health'));
        started.push(nodes[nodes.length - 1]);
      }
    } else if (id === 'T') {
      const cfg = join(dir, 'config');
      mkdirSync(cfg);
      writeFileSync(join(cfg, 'tidings.properties'), [
        `tidings.redis.url=${redis!.url}`,
        `tidings.push.token=${PUSH_TOKEN}`,
        `tidings.admin.token=${ADMIN_TOKEN}`,
        'tidings.config.watch=false',
        'tidings.log.level=warn',
        // Only *failed* logins are limited (none here), and every user holds one or two
        // connections: the defaults never throttle this bench.
        '',
      ].join('\n'));
      writeRemoteProps(cfg, DELAY0);
      const lines = ['contexts:', '  - id: 1', '    name: bench.example', 'users:'];
      for (let u = 1; u <= TIDINGS_USERS; u++) lines.push(`  - { id: ${u}, context: 1, login: u${u}@bench.example, password: "{PLAIN}pw${u}" }`);
      writeFileSync(join(cfg, 'directory.yml'), lines.join('\n') + '\n');
      nodes = [];
      for (const i of [1, 2]) {
        const port = await freePort();
        nodes.push(await startNode(`t-node${i}`, dir, TIDINGS_MAIN, ['serve', '--config', cfg], { TIDINGS_NODE_ID: `bench-node${i}`, TIDINGS_HTTP_PORT: String(port), TIDINGS_ADMIN_SOCKET: `run/admin-${i}.sock` }, port, '/health/ready', true));
        started.push(nodes[nodes.length - 1]);
      }
    } else if (id === 'R') {
      const port = await freePort();
      nodes = [await startNode('raw-ws', dir, RAW_WS_MAIN, [], { PORT: String(port) }, port, '/health')];
      started.push(nodes[0]);
    } else {
      const maxConns = Math.max(1024, FD_LIMIT - 100);
      nodes = [];
      for (const i of id === 'N' ? [1] : [1, 2]) {
        nodes.push(await startNginx(dir, `nginx${i}`, redis?.port ?? null, maxConns));
        started.push(nodes[nodes.length - 1]);
      }
    }
    return sysOf(id, dir, nodes, redis);
  } catch (e) {
    for (const p of started.reverse()) await p.stop();
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

function writeRemoteProps(cfg: string, props: Record<string, number>): void {
  writeFileSync(join(cfg, 'websockets.properties'), Object.entries(props).map(([k, val]) => `${k}=${val}`).join('\n') + '\n');
}

/** Switches tidings' remote-buffer settings: rewrite the file, reload the cluster, check both nodes. */
async function applyBuffer(t: Sys, props: Record<string, number>): Promise<void> {
  writeRemoteProps(join(t.dir, 'config'), props);
  const agent = new Agent({ keepAlive: false });
  const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
  const r = await httpRequest(agent, `${t.pubUrl}/api/admin/reload`, 'POST', '{}', auth);
  if (r.status !== 200) throw new Error(`reload failed: ${r.status} ${r.body}`);
  const want = { delayDuration: 1000, maxDelayDuration: 3000, timerFrequency: 500 } as Record<string, number>;
  for (const [k, val] of Object.entries(props)) want[k.slice(REMOTE.length)] = val;
  for (const url of [t.pubUrl, t.subUrl]) {
    for (const [k, val] of Object.entries(want)) {
      await waitUntil(`${url}: ${k}=${val}`, async () => {
        const a = await httpRequest(agent, `${url}/api/admin/config?key=${REMOTE}${k}&context=1`, 'GET', undefined, auth);
        return a.status === 200 && (JSON.parse(a.body) as { value: unknown }).value === val;
      }, 5000);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The receiving side

interface EventData {
  p: number;
  s: number;
  u: number;
  t: number;
}

interface PhaseStats {
  count: number;
  dups: number;
  seen: Uint8Array;
  lastUs: number;
  lat: number[] | null;
}

/** One per system: every delivery to any of its measured clients. */
class Receiver {
  readonly phases = new Map<number, PhaseStats>();
  readonly sockets: Socket[] = [];
  readonly webSockets: WebSocket[] = [];
  misrouted = 0;
  malformed = 0;
  unexpectedCloses = 0;
  closing = false;

  constructor(readonly sys: SysId) {}

  phase(p: number, latency = false): PhaseStats {
    let s = this.phases.get(p);
    if (!s) this.phases.set(p, (s = { count: 0, dups: 0, seen: new Uint8Array(1 << 16), lastUs: 0, lat: latency ? [] : null }));
    return s;
  }

  onEvent(user: number, d: EventData): void {
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

  attachSocketIo(socket: Socket, user: number): void {
    this.sockets.push(socket);
    socket.on(EVENT, (d: EventData) => this.onEvent(user, d));
    socket.on('disconnect', () => {
      if (!this.closing) this.unexpectedCloses++;
    });
  }

  /** Frames `{"name":…,"args":[data],…}` (tidings' plain WebSocket, R, and the message Nchan was given). */
  attachWebSocket(ws: WebSocket, user: number): void {
    this.webSockets.push(ws);
    ws.on('message', (raw) => {
      try {
        const f = JSON.parse(String(raw)) as { name?: unknown; args?: unknown[] };
        if (f.name !== EVENT || !Array.isArray(f.args)) throw new Error('not an event frame');
        this.onEvent(user, f.args[0] as EventData);
      } catch {
        this.malformed++;
      }
    });
    ws.on('close', () => {
      if (!this.closing) this.unexpectedCloses++;
    });
  }

  check(what: string): void {
    if (this.misrouted > 0) throw new Error(`${what}: ${this.misrouted} events reached a socket of another user`);
    if (this.malformed > 0) throw new Error(`${what}: ${this.malformed} frames were not event frames`);
    if (this.unexpectedCloses > 0) throw new Error(`${what}: ${this.unexpectedCloses} sockets closed unexpectedly`);
    for (const [p, s] of this.phases) if (s.dups > 0) throw new Error(`${what}: phase ${p}: ${s.dups} duplicate deliveries`);
  }

  closeAll(): void {
    this.closing = true;
    for (const s of this.sockets) s.close();
    for (const w of this.webSockets) w.terminate();
  }
}

/** Connects the measured clients of a system to its node 2 (logins, for tidings, on node 1). */
async function connectMeasured(s: Sys, rx: Receiver): Promise<void> {
  const range = (r: UserRange) => Array.from({ length: r.users }, (_, i) => r.base + i);
  const sio = async (r: UserRange, transport: Transport, logins?: Map<number, Login>) =>
    pool(range(r), CONNECT_PARALLEL, async (u) => rx.attachSocketIo(await connectSocketIo(s.subUrl, transport, logins ? { login: logins.get(u)! } : { auth: { user: String(u) } }), u));
  if (s.id === 'A') {
    await sio(R_SIO, 'websocket');
    await sio(R_POLL, 'polling');
  } else if (s.id === 'T') {
    const agent = new Agent({ keepAlive: true, maxSockets: 32 });
    const logins = new Map<number, Login>();
    await pool([...range(R_SIO), ...range(R_WS), ...range(R_POLL)], 32, async (u) => logins.set(u, await login(agent, s.pubUrl, u)));
    agent.destroy();
    await sio(R_SIO, 'websocket', logins);
    await pool(range(R_WS), CONNECT_PARALLEL, async (u) => rx.attachWebSocket(await connectWebSocket(s.subUrl, { login: logins.get(u)! }), u));
    await sio(R_POLL, 'polling', logins);
  } else {
    await pool(range(R_SIO), CONNECT_PARALLEL, async (u) => rx.attachWebSocket(await connectWebSocket(s.subUrl, s.id === 'R' ? { user: u } : { nchan: u }), u));
  }
}

// ---------------------------------------------------------------------------------------------
// Child processes: the publisher and the connection holders

class Child<C, R> {
  readonly child: ChildProcess;
  #waiting: ((m: R) => void) | null = null;
  #failed: ((e: Error) => void) | null = null;

  constructor(script: string, raiseFds: boolean) {
    if (raiseFds) {
      const [c, a] = withFdLimit(process.execPath, [script]);
      this.child = spawn(c, a, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    } else {
      this.child = fork(script, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    }
    this.child.on('message', (m) => {
      const w = this.#waiting;
      this.#waiting = null;
      w?.(m as R);
    });
    this.child.on('exit', (code) => this.#failed?.(new Error(`${script} exited (${code})`)));
  }

  ask(c: C): Promise<R> {
    return new Promise((resolve, reject) => {
      this.#waiting = resolve;
      this.#failed = reject;
      this.child.send(c as object);
    });
  }

  exit(): void {
    if (this.child.connected) this.child.disconnect();
  }
}

class Publisher extends Child<PublisherCommand, PublisherReport> {
  constructor() {
    super(PUBLISHER_MAIN, false);
  }
  async target(target: PublisherTarget, range: UserRange): Promise<void> {
    await this.ask({ cmd: 'target', target, range, concurrency: CONCURRENCY });
  }
  run(c: Extract<PublisherCommand, { cmd: 'run' }>): Promise<PublisherReport> {
    return this.ask(c);
  }
}

class Holders {
  readonly list: Child<HolderCommand, HolderReply>[] = [];
  constructor(n: number) {
    for (let i = 0; i < n; i++) this.list.push(new Child(HOLDER_MAIN, true));
  }
  /** Spreads `users` over the holders by user id (so a user's login and connection meet in one holder) and runs `cmd` on each share. */
  async each(users: readonly number[], cmd: (share: number[]) => HolderCommand): Promise<void> {
    const shares: number[][] = this.list.map(() => []);
    for (const u of users) shares[(u - 1) % shares.length].push(u);
    const replies = await Promise.all(shares.map((s, i) => (s.length ? this.list[i].ask(cmd(s)) : Promise.resolve({ ok: true, held: 0 } as HolderReply))));
    for (const r of replies) if (!r.ok) throw new Error(`connection holder: ${r.error}`);
  }
  async closeAll(): Promise<void> {
    const replies = await Promise.all(this.list.map((h) => h.ask({ cmd: 'close' })));
    for (const r of replies) if (!r.ok) throw new Error(`connection holder: ${r.error}`);
  }
  exit(): void {
    for (const h of this.list) h.exit();
  }
}

// ---------------------------------------------------------------------------------------------
// Measurements

let nextPhase = 1;
const snap = (procs: readonly Proc[]): number[] => procs.map((p) => cpuMs(p.pid));
const delta = (a: number[], b: number[]): number[] => b.map((x, i) => x - a[i]);
const sum = (xs: number[]): number => xs.reduce((s, x) => s + x, 0);
const SYSCALL_TOOL = SYSCALLS ? syscallTool() : 'none';
if (SYSCALLS && SYSCALL_TOOL === 'none') notes.push('--syscalls: neither perf nor strace works here; no syscall counts');

interface Window {
  readonly sys: SysId;
  readonly delivered: number;
  /** server CPU per delivered event, µs: all processes, and each one (procs order) */
  readonly cpuUs: number;
  readonly perProcUs: readonly number[];
  readonly procNames: readonly string[];
  readonly clientUs: number;
  /** Delivered / (last delivery − first publish). */
  readonly rate: number;
  readonly tailMs: number;
  readonly foreignPct: number;
  readonly redis: RedisDelta | null;
  /** Per process (procs order), when counting syscalls. */
  readonly syscalls: readonly SyscallCounts[] | null;
}

interface LatencyFigures {
  readonly n: number;
  readonly p50: number;
  readonly p99: number;
}

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

function targetFor(s: Sys, batch = 1): PublisherTarget {
  switch (s.id) {
    case 'A': return { kind: 'socketio', url: s.pubUrl };
    case 'R': return { kind: 'rawws', url: s.pubUrl };
    case 'T': return { kind: 'tidings', url: s.pubUrl, token: PUSH_TOKEN, context: 1, batch };
    default: return { kind: 'nchan', url: s.pubUrl };
  }
}

type Load = { readonly kind: 'flood' } | { readonly kind: 'mail' };

interface Job {
  readonly s: Sys;
  readonly rx: Receiver;
  readonly range: UserRange;
  readonly batch: number;
  readonly load: Load;
  /** ms the system may hold events (tidings' remote buffer) */
  readonly holdMs: number;
  readonly label: string;
}

const warmed = new Set<SysId>();

async function measure(j: Job, pub: Publisher, log: (s: string) => void): Promise<Window> {
  await pub.target(targetFor(j.s, j.batch), j.range);
  const warm = await pub.run({ cmd: 'run', phase: nextPhase++, mode: 'max', durationMs: warmed.has(j.s.id) ? WARM_MS : FIRST_WARM_MS });
  warmed.add(j.s.id);
  await waitDelivered(j.rx, warm, `${j.label} warm-up`, j.holdMs + 15_000);
  await sleep(j.holdMs > 0 ? 300 : 200);
  const redis0 = j.s.redisPort !== null ? await redisCounters(j.s.redisPort) : null;
  const probes: SyscallProbe[] | null = SYSCALL_TOOL !== 'none' ? await Promise.all(j.s.procs.map((p) => countSyscalls(SYSCALL_TOOL, p.pid, j.s.dir, `${p.name}-${nextPhase}`))) : null;
  const a = snap(j.s.procs);
  const clients = [process.pid, pub.child.pid!];
  const ca = clients.map(cpuMs);
  const ma = machineBusyMs();
  const phase = nextPhase++;
  const r = await pub.run(j.load.kind === 'flood'
    ? { cmd: 'run', phase, mode: 'max', durationMs: MEASURE_MS }
    : { cmd: 'run', phase, mode: 'burst', bursts: MAIL_BURSTS, offsetsMs: MAIL_OFFSETS, durationMs: MEASURE_MS });
  const st = await waitDelivered(j.rx, r, j.label, j.holdMs + 15_000);
  const d = delta(a, snap(j.s.procs));
  const cd = delta(ca, clients.map(cpuMs));
  const machine = machineBusyMs() - ma;
  const syscalls = probes ? await Promise.all(probes.map((p) => p.stop())) : null;
  const redis = redis0 ? redisDelta(redis0, await redisCounters(j.s.redisPort!)) : null;
  const windowMs = (st.lastUs - r.startUs) / 1000;
  const n = st.count;
  // The profiles' timestamps are CLOCK_MONOTONIC µs like nowUs(): cpuprofile-top --window cuts a profile to this window.
  if (PROF_DIR) appendFileSync(join(PROF_DIR, 'windows.txt'), `${j.label} ${r.startUs} ${st.lastUs}\n`);
  const w: Window = {
    sys: j.s.id, delivered: n, cpuUs: (sum(d) * 1000) / n, perProcUs: d.map((x) => (x * 1000) / n), procNames: j.s.procs.map((p) => p.name),
    clientUs: (sum(cd) * 1000) / n, rate: n / (windowMs / 1000), tailMs: (st.lastUs - r.endUs) / 1000,
    foreignPct: (Math.max(0, machine - sum(d) - sum(cd)) / (windowMs * cpus().length)) * 100, redis, syscalls,
  };
  const sc = syscalls ? `; per event: ${fmtSys(sumSys(syscalls), n)}` : '';
  const rd = redis ? `; redis ${f2(redis.commands / n)} cmds, ${f1((redis.inBytes + redis.outBytes) / n)} B per event` : '';
  log(`  ${j.label}: ${n} delivered, ${Math.round(w.rate)}/s, ${f1(w.cpuUs)} µs CPU/event (${w.perProcUs.map((x, i) => `${w.procNames[i]} ${f1(x)}`).join(', ')})${rd}${sc}, other CPU ${w.foreignPct.toFixed(0)} %`);
  return w;
}

function sumSys(xs: readonly SyscallCounts[]): SyscallCounts {
  return xs.reduce((s, x) => ({ writes: s.writes + x.writes, reads: s.reads + x.reads, epollWaits: s.epollWaits + x.epollWaits, total: s.total + x.total }), { writes: 0, reads: 0, epollWaits: 0, total: 0 });
}
const fmtSys = (c: SyscallCounts, n: number): string => `${f2(c.writes / n)} writes, ${f2(c.reads / n)} reads, ${f2(c.epollWaits / n)} epoll waits, ${f2(c.total / n)} syscalls`;

async function measureLatency(s: Sys, rx: Receiver, pub: Publisher, range: UserRange, label: string, log: (s: string) => void): Promise<LatencyFigures> {
  await pub.target(targetFor(s), range);
  const phase = nextPhase++;
  rx.phase(phase, true);
  const r = await pub.run({ cmd: 'run', phase, mode: 'rate', rate: LAT_RATE, durationMs: LAT_MS });
  const st = await waitDelivered(rx, r, label, 15_000);
  const lat = [...st.lat!].sort((x, y) => x - y);
  const f = { n: lat.length, p50: percentile(lat, 50), p99: percentile(lat, 99) };
  log(`  ${label} latency: p50 ${f2(f.p50)} ms, p99 ${f2(f.p99)} ms (n=${f.n})`);
  return f;
}

/** Node 1 of system A answering POST /noop: server CPU per bare HTTP request from the same publisher. */
async function measureHttpFloor(a: Sys, pub: Publisher): Promise<number> {
  await pub.target({ kind: 'noop', url: a.pubUrl }, R_SIO);
  const warm = await pub.run({ cmd: 'run', phase: nextPhase++, mode: 'max', durationMs: WARM_MS });
  if (warm.errors > 0) throw new Error(`no-op HTTP: ${warm.firstError}`);
  const before = cpuMs(a.procs[0].pid);
  const r = await pub.run({ cmd: 'run', phase: nextPhase++, mode: 'max', durationMs: MEASURE_MS });
  if (r.errors > 0) throw new Error(`no-op HTTP: ${r.firstError}`);
  return ((cpuMs(a.procs[0].pid) - before) * 1000) / r.sent;
}

interface ConnectFigures {
  readonly n: number;
  /** server CPU per login (tidings only), ms */
  readonly loginMs: number;
  /** server CPU per Socket.IO websocket connect, ms */
  readonly connectMs: number;
  readonly redisMs: number;
  /** node 2's RSS growth per idle connection over N_IDLE connections, KB */
  readonly rssIdleKb: number;
  /** the same over N_BIG connections (NaN when not measured) */
  readonly rssBigKb: number;
  readonly rssBaseKb: number;
}

/**
 * Idle connections through the holders: logins (tidings) to node 1, then Socket.IO websocket
 * connects to node 2; server CPU of each step; node 2's RSS after a settle pause, at N_IDLE and
 * (when `big`) N_BIG connections. All closed again at the end.
 */
async function measureConnect(s: Sys, holders: Holders, big: number, log: (s: string) => void): Promise<ConnectFigures> {
  const kind = s.id as 'A' | 'T';
  const node2 = s.holder;
  const redisIdx = s.procs.length - 1;
  const users = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
  const step = async (from: number, to: number): Promise<{ login: number[]; connect: number[] }> => {
    const us = users(from, to);
    let login = s.procs.map(() => 0);
    if (kind === 'T') {
      const a = snap(s.procs);
      await holders.each(us, (share) => ({ cmd: 'login', url: s.pubUrl, users: share, parallel: 16 }));
      login = delta(a, snap(s.procs));
    }
    const a = snap(s.procs);
    await holders.each(us, (share) => ({ cmd: 'connect', kind, url: s.subUrl, users: share, parallel: Math.ceil(CONNECT_PARALLEL / holders.list.length) }));
    return { login, connect: delta(a, snap(s.procs)) };
  };
  /** RSS after a settle pause and a full GC (bench/gc-on-signal.ts), so start-up garbage is not counted. */
  const settledRss = async () => {
    await sleep(SETTLE_MS);
    process.kill(node2.pid, 'SIGUSR2');
    await sleep(1000);
    return rssKb(node2.pid);
  };
  const rssBaseKb = await settledRss();
  const t0 = Date.now();
  const first = await step(1, N_IDLE);
  const rssIdle = await settledRss();
  let rssBigKb = NaN;
  if (big > N_IDLE) {
    await step(N_IDLE + 1, big);
    rssBigKb = ((await settledRss()) - rssBaseKb) / big;
  }
  await holders.closeAll();
  const f: ConnectFigures = {
    n: N_IDLE, loginMs: sum(first.login) / N_IDLE, connectMs: sum(first.connect) / N_IDLE, redisMs: (first.login[redisIdx] + first.connect[redisIdx]) / N_IDLE,
    rssIdleKb: (rssIdle - rssBaseKb) / N_IDLE, rssBigKb, rssBaseKb,
  };
  log(`  ${s.id} connect: ${N_IDLE} in ${((Date.now() - t0) / 1000).toFixed(1)} s; ${kind === 'T' ? `login ${f3(f.loginMs)} ms + ` : ''}connect ${f3(f.connectMs)} ms server CPU; RSS ${f1(rssBaseKb / 1024)} MB + ${f1(f.rssIdleKb)} KB/conn${Number.isFinite(rssBigKb) ? `, at ${big}: ${f1(rssBigKb)} KB/conn` : ''}`);
  return f;
}

/** Waits (at most QUIET_WAIT_MS) until other processes use under 20 % of the machine for a second. */
const QUIET_WAIT_MS = QUICK ? 5000 : 30_000;
async function waitQuiet(log: (s: string) => void): Promise<number> {
  const deadline = Date.now() + QUIET_WAIT_MS;
  for (;;) {
    const m0 = machineBusyMs();
    const t0 = Date.now();
    await sleep(1000);
    const pct = ((machineBusyMs() - m0) / ((Date.now() - t0) * cpus().length)) * 100;
    if (pct < 20 || Date.now() > deadline) {
      if (pct >= 20) log(`  machine still busy (${pct.toFixed(0)} % of all cores used by other processes); measuring anyway`);
      return pct;
    }
    log(`  machine busy (${pct.toFixed(0)} % of all cores used by other processes); waiting`);
    await sleep(4000);
  }
}

// ---------------------------------------------------------------------------------------------
// Rounds

type PairId = 'sio' | 'ws' | 'b50' | 'mail';
const ALL_PAIRS: readonly PairId[] = ['sio', 'ws', 'b50', 'mail'];
/**
 * BENCH_ONLY=sio,mail (development, experiments): only these pairs; no connect/memory phase, no
 * latency, no Nchan; the report then has only those rows.
 */
const ONLY = process.env.BENCH_ONLY ? process.env.BENCH_ONLY.split(',').map((x) => x.trim()) : null;
if (ONLY) for (const x of ONLY) if (!ALL_PAIRS.includes(x as PairId)) throw new Error(`BENCH_ONLY: unknown pair ${x} (one of ${ALL_PAIRS.join(', ')})`);
const PAIRS: readonly PairId[] = ONLY ? ALL_PAIRS.filter((p) => ONLY.includes(p)) : ALL_PAIRS;
/** Only the paired windows (syscall counts are taken there; connect, memory and latency are not what they count). */
const LEAN = ONLY !== null || SYSCALLS;

interface Pair {
  readonly id: PairId;
  readonly baseFirst: boolean;
  readonly base: Window;
  readonly t: Window;
}

interface Round {
  readonly connect: Partial<Record<'A' | 'T', ConnectFigures>>;
  readonly pairs: Pair[];
  readonly refs: Partial<Record<'N' | 'NR', Window>>;
  readonly latency: Record<string, LatencyFigures>;
  readonly httpFloorUs: number;
  readonly quietPct: number;
  /** Why the relayed-poll figure is missing, when it is. */
  readonly relayMissing: string | null;
}

/**
 * tidings' polling clients behind a balancer (bench/balancer.ts): R_POLL_PINNED through the port
 * pinned to node 2, R_POLL_RR through the round-robin port. A build without the cross-node
 * relay refuses the round-robin sessions ("Session ID unknown"): then only the reason is kept.
 */
async function connectBehindBalancer(t: Sys, rx: Receiver, b: Balancer): Promise<string | null> {
  const range = (r: UserRange) => Array.from({ length: r.users }, (_, i) => r.base + i);
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });
  const logins = new Map<number, Login>();
  await pool([...range(R_POLL_PINNED), ...range(R_POLL_RR)], 16, async (u) => logins.set(u, await login(agent, t.pubUrl, u)));
  agent.destroy();
  await pool(range(R_POLL_PINNED), 20, async (u) => rx.attachSocketIo(await connectSocketIo(b.pinnedUrl, 'polling', { login: logins.get(u)! }), u));
  // One probe first: a session refused half of the time fails within a few polls.
  const first = R_POLL_RR.base;
  let probe: Socket;
  try {
    probe = await connectSocketIo(b.rrUrl, 'polling', { login: logins.get(first)! });
    // Connected is not enough: a few polls must go through both nodes.
    const dropped = await new Promise<string | null>((resolve) => {
      const t0 = setTimeout(() => resolve(null), 1500);
      probe.once('disconnect', (why) => {
        clearTimeout(t0);
        resolve(String(why));
      });
    });
    if (dropped !== null) return `round-robin polling sessions drop (${dropped}): this build has no cross-node relay`;
  } catch (e) {
    return `round-robin polling sessions are refused (${e instanceof Error ? e.message : String(e)}): this build has no cross-node relay`;
  }
  rx.attachSocketIo(probe, first);
  await pool(range(R_POLL_RR).slice(1), 20, async (u) => rx.attachSocketIo(await connectSocketIo(b.rrUrl, 'polling', { login: logins.get(u)! }), u));
  return null;
}

const HOLD_DEFAULT = 3000 + 500;

async function runRound(round: number, pub: Publisher, holders: Holders, withNchan: boolean, log: (s: string) => void): Promise<Round> {
  const quietPct = await waitQuiet(log);
  warmed.clear();
  const ids: SysId[] = ['A', 'T', ...(PAIRS.includes('ws') ? (['R'] as const) : []), ...(withNchan ? (['N', 'NR'] as const) : [])];
  const sys = new Map<SysId, Sys>();
  const rx = new Map<SysId, Receiver>();
  let balancer: Balancer | null = null;
  try {
    for (const id of ids) {
      sys.set(id, await startSystem(id));
      rx.set(id, new Receiver(id));
    }
    const S = (id: SysId) => sys.get(id)!;
    const X = (id: SysId) => rx.get(id)!;
    const connect: Round['connect'] = {};
    if (!LEAN) for (const id of round % 2 ? (['A', 'T'] as const) : (['T', 'A'] as const)) connect[id] = await measureConnect(S(id), holders, round === 1 ? N_BIG : 0, log);
    await sleep(2000);
    for (const id of ids) await connectMeasured(S(id), X(id));
    await sleep(1000);

    const job = (id: SysId, pair: PairId): Job => {
      const t = id === 'T';
      return {
        s: S(id), rx: X(id), range: t && pair === 'ws' ? R_WS : R_SIO, batch: t && pair === 'b50' ? BATCH : 1,
        load: pair === 'mail' ? { kind: 'mail' } : { kind: 'flood' }, holdMs: t && pair === 'mail' ? HOLD_DEFAULT : 0,
        label: t ? `T-${pair}` : pair === 'mail' ? `${id}-mail` : id,
      };
    };
    const pairs: Pair[] = [];
    const refs: Round['refs'] = {};
    const order = PAIRS.map((_, i) => PAIRS[(i + round - 1) % PAIRS.length]);
    for (const [i, id] of order.entries()) {
      const baseId: SysId = id === 'ws' ? 'R' : 'A';
      if (id === 'mail') await applyBuffer(S('T'), DEFAULT_BUFFER);
      const baseFirst = (i + round) % 2 === 0;
      let base: Window;
      let t: Window;
      if (baseFirst) {
        base = await measure(job(baseId, id), pub, log);
        t = await measure(job('T', id), pub, log);
      } else {
        t = await measure(job('T', id), pub, log);
        base = await measure(job(baseId, id), pub, log);
      }
      if (id === 'mail') await applyBuffer(S('T'), DELAY0);
      pairs.push({ id, baseFirst, base, t });
      // The Nchan references sit between the pairs, so they see the same drift.
      if (withNchan && i === 1) refs.N = await measure(job('N', 'sio'), pub, log);
      if (withNchan && i === 2) refs.NR = await measure(job('NR', 'sio'), pub, log);
    }

    const latency: Record<string, LatencyFigures> = {};
    if (LEAN) return { connect, pairs, refs, latency, httpFloorUs: NaN, quietPct, relayMissing: 'not measured in this mode' };
    balancer = await startBalancer(join(S('T').dir, 'balancer'), S('T').pubUrl, S('T').subUrl);
    const relayMissing = await connectBehindBalancer(S('T'), X('T'), balancer);
    if (relayMissing) log(`  relayed poll: ${relayMissing}`);
    const lat = async (key: string, id: SysId, range: UserRange) => (latency[key] = await measureLatency(S(id), X(id), pub, range, key, log));
    await lat('A ws', 'A', R_SIO);
    await lat('T-sio ws', 'T', R_SIO);
    await lat('A polling', 'A', R_POLL);
    await lat('T polling', 'T', R_POLL);
    await lat('T polling, proxy pinned', 'T', R_POLL_PINNED);
    if (!relayMissing) await lat('T polling, proxy round-robin', 'T', R_POLL_RR);
    await lat('T-ws ws', 'T', R_WS);
    await lat('R ws', 'R', R_SIO);
    if (withNchan) {
      await lat('N ws', 'N', R_SIO);
      await lat('NR ws', 'NR', R_SIO);
    }
    await sleep(300);
    for (const r of rx.values()) r.check(r.sys);
    const httpFloorUs = await measureHttpFloor(S('A'), pub);
    log(`  no-op HTTP request: ${f1(httpFloorUs)} µs server CPU`);
    return { connect, pairs, refs, latency, httpFloorUs, quietPct, relayMissing };
  } finally {
    for (const r of rx.values()) r.closeAll();
    await balancer?.stop();
    await Promise.all([...sys.values()].map((s) => s.stop()));
  }
}

// ---------------------------------------------------------------------------------------------
// Report

const f1 = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : '-');
const f2 = (x: number): string => (Number.isFinite(x) ? x.toFixed(2) : '-');
const f3 = (x: number): string => (Number.isFinite(x) ? x.toFixed(3) : '-');
const int0 = (x: number): string => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '-');
const times = (x: number): string => (Number.isFinite(x) ? `${x.toFixed(2)}×` : '-');
const verdict = (ratio: number, target: number): string => (!Number.isFinite(ratio) ? '' : ratio <= target ? 'met' : '**not met**');

const PAIR_LABEL: Record<PairId, [string, string]> = {
  sio: ['tidings, Socket.IO clients, 1 event/request', 'A: Socket.IO cluster'],
  ws: ['tidings, plain WebSocket clients, 1 event/request', 'R: raw ws, one process'],
  b50: [`tidings, JSON array of ${BATCH} events/request`, 'A, 1 event/request'],
  mail: ['tidings, default buffer (1000/3000/500 ms), mail-like bursts', 'A, same bursts'],
};
const PAIR_TARGET: Record<PairId, number> = { sio: 0.7, ws: 2, b50: 0.35, mail: 0.7 };

/** How busy other processes kept the machine during the measured windows: the figures' noise. */
function busyNote(rounds: Round[]): string {
  const xs = rounds.flatMap((r) => [...r.pairs.flatMap((p) => [p.base, p.t]), ...Object.values(r.refs)]).map((w) => w.foreignPct).sort((a, b) => a - b);
  if (xs.length === 0) return '';
  return `Other processes used ${xs[0].toFixed(0)}–${xs[xs.length - 1].toFixed(0)} % of the machine during the measured windows (median ${median(xs).toFixed(0)} %)${median(xs) > 20 ? ': CPU ratios of this run are noisy; the counts per event are not' : ''}.`;
}

function summary(rounds: Round[]): string {
  const out: string[] = [];
  const pairsOf = (id: PairId) => rounds.map((r) => r.pairs.find((p) => p.id === id)!);
  out.push('| figure | tidings | baseline (same run) | tidings / baseline | target | |');
  out.push('|---|---:|---:|---:|---:|---|');
  for (const id of PAIRS) {
    const ps = pairsOf(id);
    const ratio = median(ps.map((p) => p.t.cpuUs / p.base.cpuUs));
    out.push(`| server CPU per delivered event (µs): ${PAIR_LABEL[id][0]} vs ${PAIR_LABEL[id][1]} | ${f1(median(ps.map((p) => p.t.cpuUs)))} | ${f1(median(ps.map((p) => p.base.cpuUs)))} | ${times(ratio)} | ≤ ${PAIR_TARGET[id]}× | ${verdict(ratio, PAIR_TARGET[id])} |`);
  }
  const mail = PAIRS.includes('mail') ? pairsOf('mail') : [];
  const perEv = (w: Window, f: (d: RedisDelta) => number) => (w.redis ? f(w.redis) / w.delivered : NaN);
  const cmds = (w: Window) => perEv(w, (d) => d.commands);
  const bytes = (w: Window) => perEv(w, (d) => d.inBytes + d.outBytes);
  if (mail.length) out.push(`| … mail-like bursts: Redis commands per remote event | ${f2(median(mail.map((p) => cmds(p.t))))} | ${f2(median(mail.map((p) => cmds(p.base))))} | ${times(median(mail.map((p) => cmds(p.t) / cmds(p.base))))} | | |`);
  if (mail.length) out.push(`| … mail-like bursts: Redis bytes (in + out) per remote event | ${int0(median(mail.map((p) => bytes(p.t))))} | ${int0(median(mail.map((p) => bytes(p.base))))} | ${times(median(mail.map((p) => bytes(p.t) / bytes(p.base))))} | | |`);
  const lat = (key: string, k: 'p50' | 'p99') => median(rounds.map((r) => r.latency[key]?.[k] ?? NaN));
  for (const [tr, tk, ak] of [['websocket', 'T-sio ws', 'A ws'], ['polling', 'T polling', 'A polling']] as const) {
    if (!rounds[0].latency[tk]) continue;
    const r99 = median(rounds.map((r) => r.latency[tk].p99 / r.latency[ak].p99));
    out.push(`| cross-node latency at ${LAT_RATE}/s over ${tr}, p50 / p99 (ms), vs A | ${f2(lat(tk, 'p50'))} / ${f2(lat(tk, 'p99'))} | ${f2(lat(ak, 'p50'))} / ${f2(lat(ak, 'p99'))} | p99 ${times(r99)} | p99 ≤ 1× | ${verdict(r99, 1)} |`);
  }
  if (rounds[0].latency['T polling, proxy pinned']) {
    if (rounds[0].relayMissing) out.push(`| relayed poll (round-robin balancer, no affinity) vs the same proxy pinned to the owner | not measured: ${rounds[0].relayMissing} | | | p99 ≤ 1.5× | |`);
    else {
      const r = median(rounds.map((x) => x.latency['T polling, proxy round-robin'].p99 / x.latency['T polling, proxy pinned'].p99));
      out.push(`| relayed poll: latency at ${LAT_RATE}/s through a round-robin balancer vs the same proxy pinned to the owner, p50 / p99 (ms) | ${f2(lat('T polling, proxy round-robin', 'p50'))} / ${f2(lat('T polling, proxy round-robin', 'p99'))} | ${f2(lat('T polling, proxy pinned', 'p50'))} / ${f2(lat('T polling, proxy pinned', 'p99'))} | p99 ${times(r)} | p99 ≤ 1.5× | ${verdict(r, 1.5)} |`);
    }
  }
  if (!rounds[0].connect.T) return out.join('\n');
  const con = (s: 'A' | 'T', f: (c: ConnectFigures) => number) => median(rounds.map((r) => (r.connect[s] ? f(r.connect[s]!) : NaN)).filter(Number.isFinite));
  const cRatio = median(rounds.map((r) => (r.connect.T!.loginMs + r.connect.T!.connectMs) / r.connect.A!.connectMs));
  out.push(`| server CPU per connect (ms): tidings login + Socket.IO connect vs A's unauthenticated connect | ${f3(con('T', (c) => c.loginMs))} + ${f3(con('T', (c) => c.connectMs))} | ${f3(con('A', (c) => c.connectMs))} | ${times(cRatio)} | ≤ 1× | ${verdict(cRatio, 1)} |`);
  const mRatio = median(rounds.map((r) => r.connect.T!.rssIdleKb / r.connect.A!.rssIdleKb));
  out.push(`| RSS per idle authenticated connection, ${int0(N_IDLE)} on one node (KB) | ${f1(con('T', (c) => c.rssIdleKb))} | ${f1(con('A', (c) => c.rssIdleKb))} | ${times(mRatio)} | ≤ 0.5× | ${verdict(mRatio, 0.5)} |`);
  const big = rounds[0].connect;
  if (big.T && Number.isFinite(big.T.rssBigKb)) {
    const r = big.T.rssBigKb / big.A!.rssBigKb;
    out.push(`| RSS per idle authenticated connection, ${int0(N_BIG)} on one node (KB, round 1) | ${f1(big.T.rssBigKb)} | ${f1(big.A!.rssBigKb)} | ${times(r)} | ≤ 0.5× | ${verdict(r, 0.5)} |`);
  }
  return out.join('\n');
}

function referenceTable(rounds: Round[]): string {
  const out: string[] = [];
  const med = (xs: number[]) => median(xs.filter(Number.isFinite));
  const pw = (id: PairId, side: 'base' | 't') => rounds.flatMap((r) => r.pairs.filter((p) => p.id === id).map((p) => p[side]));
  const rows: [string, Window[], string, string][] = [
    ['A: Socket.IO cluster (2 nodes + Redis)', [...pw('sio', 'base'), ...pw('b50', 'base')], 'A ws', 'A polling'],
    ['tidings, Socket.IO clients (2 nodes + Redis)', pw('sio', 't'), 'T-sio ws', 'T polling'],
    ['tidings, plain WebSocket clients', pw('ws', 't'), 'T-ws ws', ''],
    ['R: raw ws, one process (the floor; no hop)', pw('ws', 'base'), 'R ws', ''],
    ['N: Nchan, memory store, one nginx (no hop)', rounds.map((r) => r.refs.N).filter((x): x is Window => !!x), 'N ws', ''],
    ['NR: Nchan, Redis store, 2 nginx + Redis', rounds.map((r) => r.refs.NR).filter((x): x is Window => !!x), 'NR ws', ''],
  ];
  out.push(`| system, 1 event per request, flood | server CPU per event (µs) | … of which Redis | vs A | deliveries/s | Redis cmds / event | ws latency p50 / p99 (ms) | polling p50 / p99 (ms) |`);
  out.push('|---|---:|---:|---:|---:|---:|---:|---:|');
  const aCpu = med(rows[0][1].map((w) => w.cpuUs));
  for (const [name, ws, lk, pk] of rows) {
    if (ws.length === 0) continue;
    const cpu = med(ws.map((w) => w.cpuUs));
    const redisUs = med(ws.map((w) => (w.redis ? w.perProcUs[w.perProcUs.length - 1] : NaN)));
    const l = (k: string, q: 'p50' | 'p99') => med(rounds.map((r) => r.latency[k]?.[q] ?? NaN));
    out.push(`| ${name} | ${f1(cpu)} | ${f1(redisUs)} | ${times(cpu / aCpu)} | ${int0(med(ws.map((w) => w.rate)))} | ${f2(med(ws.map((w) => (w.redis ? w.redis.commands / w.delivered : NaN))))} | ${f2(l(lk, 'p50'))} / ${f2(l(lk, 'p99'))} | ${pk ? `${f2(l(pk, 'p50'))} / ${f2(l(pk, 'p99'))}` : '—'} |`);
  }
  out.push('');
  out.push(`Reference: a no-op HTTP request (parse the JSON body, answer 200) costs a Node server ${f1(median(rounds.map((r) => r.httpFloorUs)))} µs of CPU with the same publisher: the floor of any one-request-per-event design.`);
  return out.join('\n');
}

function details(rounds: Round[]): string {
  const out: string[] = [];
  out.push('Every measured window, in the order measured (server CPU per delivered event, per process; Redis commands and bytes per event from `INFO commandstats` / `INFO stats`):');
  out.push('');
  out.push('| round | window | delivered | CPU µs/event | per process µs | T/base | Redis cmds/event | Redis B in/out per event | top Redis commands per event | deliveries/s | tail ms | other busy |');
  out.push('|---|---|---:|---:|---|---:|---:|---:|---|---:|---:|---:|');
  rounds.forEach((r, i) => {
    const line = (label: string, w: Window, ratio: string) => {
      const top = w.redis ? [...w.redis.byCommand].sort((a, b) => b[1] - a[1]).slice(0, 4).map(([k, v]) => `${k} ${f2(v / w.delivered)}`).join(', ') : '';
      out.push(`| ${i + 1} | ${label} | ${w.delivered} | ${f1(w.cpuUs)} | ${w.perProcUs.map((x, k) => `${w.procNames[k]} ${f1(x)}`).join(' / ')} | ${ratio} | ${w.redis ? f2(w.redis.commands / w.delivered) : ''} | ${w.redis ? `${int0(w.redis.inBytes / w.delivered)} / ${int0(w.redis.outBytes / w.delivered)}` : ''} | ${top} | ${int0(w.rate)} | ${Math.max(0, w.tailMs).toFixed(0)} | ${w.foreignPct.toFixed(0)} % |`);
    };
    for (const p of r.pairs) {
      const bl = `${p.base.sys}${p.id === 'mail' ? ' (mail)' : ''}`;
      const tl = `T-${p.id}`;
      const ratio = times(p.t.cpuUs / p.base.cpuUs);
      if (p.baseFirst) {
        line(bl, p.base, '');
        line(tl, p.t, ratio);
      } else {
        line(tl, p.t, ratio);
        line(bl, p.base, '');
      }
    }
    if (r.refs.N) line('N', r.refs.N, '');
    if (r.refs.NR) line('NR', r.refs.NR, '');
  });
  out.push('');
  const keys = Object.keys(rounds[0].latency);
  if (keys.length === 0) return out.join('\n');
  out.push(`| round | ${keys.map((k) => `${k} p50 / p99 ms`).join(' | ')} | no-op HTTP µs |`);
  out.push(`|---|${keys.map(() => '---:|').join('')}---:|`);
  rounds.forEach((r, i) => out.push(`| ${i + 1} | ${keys.map((k) => (r.latency[k] ? `${f2(r.latency[k].p50)} / ${f2(r.latency[k].p99)}` : '-')).join(' | ')} | ${f1(r.httpFloorUs)} |`));
  out.push('');
  out.push('| round | system | idle connections | login ms | connect ms | of which Redis ms | node 2 RSS at start (MB) | RSS/conn KB | RSS/conn KB at the big count |');
  out.push('|---|---|---:|---:|---:|---:|---:|---:|---:|');
  rounds.forEach((r, i) => {
    for (const s of ['A', 'T'] as const) {
      const c = r.connect[s];
      if (c) out.push(`| ${i + 1} | ${s} | ${c.n} | ${s === 'T' ? f3(c.loginMs) : '—'} | ${f3(c.connectMs)} | ${f3(c.redisMs)} | ${f1(c.rssBaseKb / 1024)} | ${f1(c.rssIdleKb)} | ${f1(c.rssBigKb)} |`);
    }
  });
  return out.join('\n');
}

function syscallTable(rounds: Round[]): string {
  const out: string[] = [];
  out.push(`Syscalls per delivered event (${SYSCALL_TOOL === 'perf' ? '`perf stat` on the syscall tracepoints' : '`strace -c -f -p`'}, every server process of the system, over the measured window; median over rounds):`);
  out.push('');
  out.push('| window | process | writes | reads | epoll waits | all syscalls |');
  out.push('|---|---|---:|---:|---:|---:|');
  const windows = new Map<string, Window[]>();
  const add = (k: string, w: Window) => (windows.get(k) ?? windows.set(k, []).get(k)!).push(w);
  for (const r of rounds) {
    for (const p of r.pairs) {
      add(`${p.base.sys}${p.id === 'mail' ? ' (mail)' : ''}`, p.base);
      add(`T-${p.id}`, p.t);
    }
    for (const k of ['N', 'NR'] as const) if (r.refs[k]) add(k, r.refs[k]!);
  }
  for (const [label, ws] of windows) {
    if (!ws[0].syscalls) continue;
    const per = (f: (c: SyscallCounts) => number, proc: number | null) => f2(median(ws.map((w) => (proc === null ? f(sumSys(w.syscalls!)) : f(w.syscalls![proc])) / w.delivered)));
    const row = (name: string, proc: number | null) => out.push(`| ${label} | ${name} | ${per((c) => c.writes, proc)} | ${per((c) => c.reads, proc)} | ${per((c) => c.epollWaits, proc)} | ${per((c) => c.total, proc)} |`);
    ws[0].procNames.forEach((n, k) => row(n, k));
    if (ws[0].procNames.length > 1) row('**all**', null);
  }
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Provenance

function git(args: string[]): string {
  const r = spawnSync('git', ['-C', ROOT, ...args], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : '';
}

function versions(withNchan: boolean): string {
  const pkg = (name: string) => {
    try {
      return (JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      return '?';
    }
  };
  const redis = /v=(\S+)/.exec(spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).stdout)?.[1] ?? '?';
  const tool = SYSCALL_TOOL === 'perf' ? `, ${spawnSync('perf', ['--version'], { encoding: 'utf8' }).stdout.trim()}` : SYSCALL_TOOL === 'strace' ? `, ${spawnSync('strace', ['-V'], { encoding: 'utf8' }).stdout.split('\n')[0]}` : '';
  return `Node ${process.version}, redis-server ${redis}, socket.io ${pkg('socket.io')}, socket.io-client ${pkg('socket.io-client')}, engine.io ${pkg('engine.io')}, @socket.io/redis-adapter ${pkg('@socket.io/redis-adapter')}, ws ${pkg('ws')}, ioredis ${pkg('ioredis')}, fastify ${pkg('fastify')}${withNchan ? `, nginx ${nchanVersions()}` : ''}${tool}`;
}

const DOC_START = '<!-- bench:messaging:start (written by npm run bench) -->';
const DOC_END = '<!-- bench:messaging:end -->';

function writeResults(text: string, docTable: string): string[] {
  const written: string[] = [];
  const file = join(ROOT, 'bench', 'results', QUICK ? 'messaging-quick.md' : SYSCALLS ? 'messaging-syscalls.md' : 'messaging.md');
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, text);
  written.push(file);
  if (!QUICK && !SYSCALLS) {
    const doc = join(ROOT, 'docs', 'benchmarks.md');
    let cur: string;
    try {
      cur = readFileSync(doc, 'utf8');
    } catch {
      cur = `# Benchmarks\n\n${DOC_START}\n${DOC_END}\n`;
    }
    const a = cur.indexOf(DOC_START);
    const b = cur.indexOf(DOC_END);
    const block = `${DOC_START}\n${docTable}\n${DOC_END}`;
    writeFileSync(doc, a >= 0 && b > a ? cur.slice(0, a) + block + cur.slice(b + DOC_END.length) : `${cur.trimEnd()}\n\n${block}\n`);
    written.push(doc);
  }
  return written;
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const t0 = Date.now();
  const started = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const log = (s: string) => process.stderr.write(`${s}\n`);
  const head = git(['rev-parse', 'HEAD']);
  const dirty = git(['status', '--porcelain', '--untracked-files=no']) !== '';
  const commit = `${head.slice(0, 12) || 'unknown'}${dirty ? ' (dirty)' : ''}`;
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB`;
  const nchanWhyNot = ONLY ? null : ensureNchan(log);
  if (nchanWhyNot) notes.push(`Nchan not measured: ${nchanWhyNot}`);
  const withNchan = nchanWhyNot === null && !ONLY;
  log(`${machine}; open-file limit ${FD_LIMIT}; commit ${commit}${QUICK ? '; quick' : ''}${SYSCALLS ? `; syscall counts by ${SYSCALL_TOOL}` : ''}`);
  for (const n of notes) log(`note: ${n}`);
  const pub = new Publisher();
  const holders = new Holders(Math.max(1, Math.ceil(Math.max(N_IDLE, N_BIG) / PER_HOLDER)));
  const rounds: Round[] = [];
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      log(`round ${round}`);
      rounds.push(await runRound(round, pub, holders, withNchan, log));
    }
  } finally {
    pub.exit();
    holders.exit();
  }
  const wallS = (Date.now() - t0) / 1000;
  const command = `npm run bench${QUICK || SYSCALLS ? ` --${QUICK ? ' --quick' : ''}${SYSCALLS ? ' --syscalls' : ''}` : ''}`;
  const provenance = [
    `Command: \`${command}\` (from the checkout), started ${started}, wall time ${Math.floor(wallS / 60)} min ${Math.round(wallS % 60)} s, ${rounds.length} round${rounds.length > 1 ? 's' : ''}.`,
    `Commit measured: \`${commit}\`${dirty ? ' — the tree had uncommitted changes to tracked files' : ''}.`,
    `Machine: ${machine}; open-file limit ${FD_LIMIT}. Versions: ${versions(withNchan)}.`,
    ...notes.map((n) => `Note: ${n}.`),
    busyNote(rounds),
    SYSCALLS ? 'Syscall counting was on during every measured window: the CPU figures of this run include its overhead and are not comparable with a plain run.' : '',
  ].filter(Boolean).join('\n');
  const load = `Load: ${USERS.toLocaleString('en-US')} users with one connection each on node 2, publishes to node 1 over HTTP keep-alive with ${CONCURRENCY} in flight, ${MEASURE_MS / 1000} s measured per window after a warm-up; tidings \`delayDuration=0\` except the mail-like pair. Mail-like load: ${MAIL_BURSTS} bursts/s, each ${MAIL_OFFSETS.length} events (one request each) for one user at +${MAIL_OFFSETS.join('/')} ms, = ${MAIL_BURSTS * MAIL_OFFSETS.length} events/s, the same for A and tidings. Latency: ${LAT_RATE} events/s for ${LAT_MS / 1000} s (polling: ${POLL_USERS} users on Engine.IO long-polling). Ratios are medians of per-pair ratios (each tidings window against the baseline window measured right before or after it).`;
  const sections = [
    `# messaging benchmark${QUICK ? ' (quick run: short windows, for development only)' : ''}`, '', provenance, '', load, '',
    '## Figures against the targets', '', summary(rounds), '',
    '## Every system', '', referenceTable(rounds), '',
    ...(SYSCALLS ? ['## Syscalls per delivered event', '', syscallTable(rounds), ''] : []),
    '## Details', '', details(rounds), '',
  ];
  const text = sections.join('\n');
  console.log(text);
  if (process.env.BENCH_NO_WRITE !== '1') {
    const docTable = [provenance, '', summary(rounds), '', referenceTable(rounds)].join('\n');
    for (const f of writeResults(text, docTable)) log(`wrote ${f}`);
  }
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
