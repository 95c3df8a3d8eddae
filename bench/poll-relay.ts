/**
 * What a relayed Engine.IO poll costs against a direct one.
 *
 *   npm run build && node dist/bench/poll-relay.js        (or: npm run bench:poll-relay)
 *
 * Two tidings processes (A owns the Engine.IO session, B relays) on one fresh redis-server, and one
 * polling-only socket.io-client 4.8 in this process, behind a tiny router in this process that
 * plays the balancer: the handshake always goes to A; every later request of the session goes to
 * A ("direct") or to B ("relayed", B relays it to A). The router is the same in both modes, so its
 * own cost cancels out of the comparison.
 *
 * One measurement: EVENTS events, one at a time: POST /api/push to A (the owner, so delivery is
 * local), wait until the client has it, next. Each event costs one poll answered and one new poll
 * sent. Reported: publish-to-receive latency (median, p99), server CPU per event (A + B + Redis,
 * utime+stime from /proc), and B's CPU per event alone (in relayed mode, the relay's own cost).
 * Modes alternate within each round, in a rotated order, so that drift of this shared machine hits
 * both. Every event is checked: each arrives once, in order.
 *
 * Environment knobs: BENCH_ROUNDS [5], BENCH_EVENTS [1000].
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { io, type Socket } from 'socket.io-client';
import { cpuMs, freePort, httpRequest, killAllChildren, median, nowUs, percentile, spawnLogged, startRedis, waitUntil, type Proc } from './bench-lib.js';

const TIDINGS_MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url));
const int = (v: string | undefined, d: number): number => (v !== undefined && /^\d+$/.test(v) ? Number(v) : d);
const ROUNDS = int(process.env.BENCH_ROUNDS, 5);
const EVENTS = int(process.env.BENCH_EVENTS, 1000);
const PUSH_TOKEN = 'bench-push';
const ADMIN_TOKEN = 'bench-admin';

type Mode = 'direct' | 'relayed';

interface Node {
  proc: Proc;
  url: string;
}

async function startNode(dir: string, id: string, redisUrl: string): Promise<Node> {
  const port = await freePort();
  const cfg = join(dir, id);
  mkdirSync(cfg, { recursive: true });
  writeFileSync(join(cfg, 'tidings.properties'), [
    `tidings.node.id=${id}`, `tidings.http.port=${port}`, `tidings.redis.url=${redisUrl}`, `tidings.push.token=${PUSH_TOKEN}`,
    `tidings.admin.token=${ADMIN_TOKEN}`, 'tidings.config.watch=false', 'tidings.log.level=warn', 'com.openexchange.websockets.grizzly.remote.delayDuration=0',
  ].join('\n') + '\n');
  writeFileSync(join(cfg, 'directory.yml'), 'contexts:\n  - { id: 1, name: bench }\nusers:\n  - { id: 1, context: 1, login: u@bench, password: "{PLAIN}pw" }\n');
  const proc = spawnLogged(id, dir, process.execPath, [TIDINGS_MAIN, 'serve', '--config', cfg], { PATH: process.env.PATH });
  const url = `http://127.0.0.1:${port}`;
  const agent = new Agent();
  await waitUntil(`${id} ready`, async () => (await httpRequest(agent, `${url}/health/ready`, 'GET')).status === 200, 20_000, proc);
  return { proc, url };
}

/** The balancer: handshakes to A, the session's further requests to A or B by `mode`. */
function startRouter(a: string, b: string, mode: () => Mode): Promise<{ url: string; close(): void }> {
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const srv = createServer((req: IncomingMessage, res: ServerResponse) => {
    const target = new URL(req.url ?? '/', /[?&]sid=/.test(req.url ?? '') && mode() === 'relayed' ? b : a);
    const up = request(target, { method: req.method, headers: req.headers, agent }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => {
    const addr = srv.address() as { port: number };
    resolve({ url: `http://127.0.0.1:${addr.port}`, close: () => srv.close() });
  }));
}

interface Sample {
  mode: Mode;
  latUs: number[];
  cpuPerEventUs: number;
  relayCpuPerEventUs: number;
}

async function measure(mode: Mode, socket: Socket, nodes: { a: Node; b: Node; redis: Proc }, pushAgent: Agent): Promise<Sample> {
  const got: number[] = [];
  let waiting: (() => void) | null = null;
  const onEv = (i: number) => {
    got.push(i);
    waiting?.();
  };
  socket.on('ev', onEv);
  const lat: number[] = [];
  const pids = [nodes.a.proc.pid, nodes.b.proc.pid, nodes.redis.pid];
  const before = pids.map(cpuMs);
  for (let i = 0; i < EVENTS; i++) {
    const arrived = new Promise<void>((r) => (waiting = r));
    const t0 = nowUs();
    const r = await httpRequest(pushAgent, `${nodes.a.url}/api/push`, 'POST', JSON.stringify({ context: 1, user: 1, event: 'ev', data: i }), { 'content-type': 'application/json', authorization: `Bearer ${PUSH_TOKEN}` });
    if (r.status !== 202) throw new Error(`push ${i}: ${r.status} ${r.body}`);
    await Promise.race([arrived, new Promise((_, rej) => setTimeout(() => rej(new Error(`event ${i} not delivered within 10 s (${mode})`)), 10_000))]);
    lat.push(nowUs() - t0);
  }
  const after = pids.map(cpuMs);
  socket.off('ev', onEv);
  if (got.length !== EVENTS || got.some((v, i) => v !== i)) throw new Error(`${mode}: events missing, duplicated or out of order`);
  const total = after.reduce((s, v, i) => s + v - before[i], 0);
  return { mode, latUs: lat, cpuPerEventUs: (total * 1000) / EVENTS, relayCpuPerEventUs: ((after[1] - before[1]) * 1000) / EVENTS };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tidings-bench-relay-'));
  let mode: Mode = 'direct';
  try {
    const redis = await startRedis(dir);
    const [a, b] = await Promise.all([startNode(dir, 'owner-a', redis.url), startNode(dir, 'relay-b', redis.url)]);
    const router = await startRouter(a.url, b.url, () => mode);
    const pushAgent = new Agent({ keepAlive: true });
    const login = await httpRequest(pushAgent, `${a.url}/api/login`, 'POST', JSON.stringify({ login: 'u@bench', password: 'pw' }), { 'content-type': 'application/json' });
    const session = JSON.parse(login.body).session as string;
    const cookie = String(login.headers['set-cookie']).split(';')[0];
    // B must know where A is before the first relayed poll (A's URL goes out with its heartbeat).
    await waitUntil('B to see A\'s advertised URL', async () => {
      const r = await httpRequest(pushAgent, `${b.url}/api/admin/status`, 'GET', undefined, { authorization: `Bearer ${ADMIN_TOKEN}` });
      return (JSON.parse(r.body).members as { nodeId: string; advertiseUrl: string }[]).some((m) => m.nodeId === 'owner-a' && m.advertiseUrl === a.url);
    }, 10_000);
    const socket = io(router.url, { transports: ['polling'], query: { session }, extraHeaders: { cookie }, reconnection: false, forceNew: true });
    await new Promise<void>((res, rej) => {
      socket.once('connect', () => res());
      socket.once('connect_error', rej);
    });
    const samples: Sample[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const order: Mode[] = round % 2 === 0 ? ['direct', 'relayed'] : ['relayed', 'direct'];
      for (const m of order) {
        mode = m;
        await measure(m, socket, { a, b, redis }, pushAgent); // warm-up of this mode's path, not counted
        samples.push(await measure(m, socket, { a, b, redis }, pushAgent));
        if (!socket.connected) throw new Error('the client lost its session');
      }
    }
    socket.close();
    router.close();
    report(samples);
    await Promise.all([a.proc.stop(), b.proc.stop()]);
    await redis.stop();
  } finally {
    killAllChildren();
    rmSync(dir, { recursive: true, force: true });
  }
}

function report(samples: Sample[]): void {
  const by = (m: Mode) => samples.filter((s) => s.mode === m);
  const row = (m: Mode) => {
    const s = by(m);
    const lat = s.flatMap((x) => x.latUs).sort((x, y) => x - y);
    return { p50: percentile(lat, 50), p99: percentile(lat, 99), cpu: median(s.map((x) => x.cpuPerEventUs)), relay: median(s.map((x) => x.relayCpuPerEventUs)) };
  };
  const d = row('direct');
  const r = row('relayed');
  const pairs = by('direct').map((x, i) => by('relayed')[i].cpuPerEventUs / x.cpuPerEventUs);
  console.log(`rounds ${ROUNDS}, ${EVENTS} events per measurement, ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`);
  console.log('| mode | latency p50 | latency p99 | server CPU per event (A+B+Redis) | B\'s CPU per event |');
  console.log('|---|---|---|---|---|');
  for (const [name, x] of [['direct', d], ['relayed', r]] as const) console.log(`| ${name} | ${(x.p50 / 1000).toFixed(2)} ms | ${(x.p99 / 1000).toFixed(2)} ms | ${x.cpu.toFixed(0)} µs | ${x.relay.toFixed(0)} µs |`);
  console.log(`relayed/direct server CPU per event, median of the per-round pairs: ${median(pairs).toFixed(2)}; added latency (p50): ${((r.p50 - d.p50) / 1000).toFixed(2)} ms`);
}

main().catch((e) => {
  console.error(e);
  killAllChildren();
  process.exit(1);
});
