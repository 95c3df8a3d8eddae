import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';

/**
 * Real redis-server processes for tests (Debian's redis-server binary), on free loopback
 * ports, never 6379. No persistence (`--save "" --appendonly no`, a fresh mkdtemp dir), so a
 * restart comes back empty. Every process is stopped by its pid; anything still running when
 * the test process exits is SIGKILLed (by pid) as a last resort.
 */

export type Resp = string | number | null | Resp[];

const running = new Set<ChildProcess>();
let exitHookInstalled = false;

function track(child: ChildProcess): void {
  running.add(child);
  child.once('exit', () => running.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const c of running) if (c.pid) try { process.kill(c.pid, 'SIGKILL'); } catch { /* already gone */ }
    });
  }
}

/** Sends one command over a fresh connection and returns the reply; error replies reject. */
export function redisCommand(port: number, ...args: (string | number)[]): Promise<Resp> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port });
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`redis on ${port}: no reply to ${String(args[0])}`));
    }, 5000);
    const done = (err: Error | null, v?: Resp): void => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(v ?? null);
    };
    sock.on('error', (e) => done(e));
    sock.on('connect', () => {
      const parts = args.map(String);
      sock.write(`*${parts.length}\r\n${parts.map((p) => `$${Buffer.byteLength(p)}\r\n${p}\r\n`).join('')}`);
    });
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const r = parse(buf, 0);
      if (!r) return;
      if (r.error) done(new Error(r.error));
      else done(null, r.value);
    });
  });
}

interface Parsed {
  value: Resp;
  end: number;
  error?: string;
}

/** Minimal RESP2 parser; null when the reply is not complete yet. */
function parse(buf: Buffer, at: number): Parsed | null {
  const nl = buf.indexOf('\r\n', at);
  if (nl < 0) return null;
  const line = buf.toString('utf8', at + 1, nl);
  const next = nl + 2;
  switch (String.fromCharCode(buf[at])) {
    case '+':
      return { value: line, end: next };
    case '-':
      return { value: null, end: next, error: line };
    case ':':
      return { value: Number(line), end: next };
    case '$': {
      const len = Number(line);
      if (len < 0) return { value: null, end: next };
      if (buf.length < next + len + 2) return null;
      return { value: buf.toString('utf8', next, next + len), end: next + len + 2 };
    }
    case '*': {
      const n = Number(line);
      if (n < 0) return { value: null, end: next };
      const items: Resp[] = [];
      let pos = next;
      for (let i = 0; i < n; i++) {
        const r = parse(buf, pos);
        if (!r) return null;
        items.push(r.value);
        pos = r.end;
      }
      return { value: items, end: pos };
    }
    default:
      return { value: null, end: next, error: `unexpected reply type ${buf[at]}` };
  }
}

/** A redis-server (or sentinel) process: its port, its pid and how to end it. */
class Proc {
  child: ChildProcess;
  constructor(child: ChildProcess) {
    this.child = child;
  }
  get pid(): number {
    return this.child.pid ?? -1;
  }
  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }
  async end(signal: NodeJS.Signals): Promise<void> {
    if (!this.alive) return;
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    process.kill(this.pid, signal);
    const t = setTimeout(() => this.alive && process.kill(this.pid, 'SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  }
}

/** Starts redis-server with `args` on `port` and waits until it answers PING. */
async function launch(port: number, dir: string, args: string[], what = 'redis-server'): Promise<Proc> {
  const logfile = join(dir, `${what}-${port}.log`);
  const child = spawn('redis-server', [...args, '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--logfile', logfile], { stdio: 'ignore' });
  track(child);
  const proc = new Proc(child);
  try {
    await waitFor(`${what} on port ${port} to answer PING`, async () => {
      if (!proc.alive) throw new Error(`${what} exited with ${child.exitCode ?? child.signalCode}: ${await readFile(logfile, 'utf8').catch(() => '')}`);
      return (await redisCommand(port, 'PING').catch(() => null)) === 'PONG';
    }, 10_000, 20);
  } catch (err) {
    await proc.end('SIGKILL');
    throw err;
  }
  return proc;
}

const DATA_ARGS = ['--save', '', '--appendonly', 'no'];

/** Picks a free port and launches; retries with another port if it was taken in between. */
async function launchOnFreePort(dir: string, args: string[], what?: string): Promise<{ port: number; proc: Proc }> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    try {
      return { port, proc: await launch(port, dir, args, what) };
    } catch (err) {
      if (attempt >= 3) throw err;
    }
  }
}

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  readonly pid: number;
  stop(): Promise<void>;
  kill9(): Promise<void>;
  /** Stops it and starts a new one on the same port, which comes back empty. */
  restart(): Promise<void>;
}

export async function startRedis(): Promise<RedisServer> {
  const dir = await mkdtemp(join(tmpdir(), 'tidings-redis-'));
  let { port, proc } = await launchOnFreePort(dir, DATA_ARGS);
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get pid() {
      return proc.pid;
    },
    async stop() {
      await proc.end('SIGTERM');
      await rm(dir, { recursive: true, force: true });
    },
    async kill9() {
      await proc.end('SIGKILL');
    },
    async restart() {
      await proc.end('SIGKILL');
      proc = await launch(port, dir, DATA_ARGS);
    },
  };
}

export interface SentinelNode {
  readonly port: number;
  readonly pid: number;
}

export interface SentinelSet {
  /** The current primary and replica; they swap on failover(). */
  readonly primary: SentinelNode;
  readonly replica: SentinelNode;
  readonly sentinels: readonly SentinelNode[];
  readonly url: string;
  /** SENTINEL FAILOVER, then waits until every sentinel names the replica as primary. */
  failover(): Promise<void>;
  stop(): Promise<void>;
}

const MASTER = 'mymaster';

export async function startSentinelSet(): Promise<SentinelSet> {
  const dir = await mkdtemp(join(tmpdir(), 'tidings-sentinel-'));
  const procs: Proc[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(procs.map((p) => p.end('SIGTERM')));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    // No 5 s diskless-sync delay (the default): the replica syncs at once, now and after failover.
    const replArgs = [...DATA_ARGS, '--repl-diskless-sync-delay', '0'];
    const a = await launchOnFreePort(dir, replArgs);
    procs.push(a.proc);
    const b = await launchOnFreePort(dir, [...replArgs, '--replicaof', '127.0.0.1', String(a.port)]);
    procs.push(b.proc);
    await waitFor('the replica to sync', async () => /master_link_status:up/.test(String(await redisCommand(b.port, 'INFO', 'replication'))));
    const sentinels: SentinelNode[] = [];
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const conf = join(dir, `sentinel-${i}.conf`);
      // Short timings so that a failover takes seconds, not minutes.
      await writeFile(conf, [
        `sentinel monitor ${MASTER} 127.0.0.1 ${a.port} 2`,
        `sentinel down-after-milliseconds ${MASTER} 1000`,
        `sentinel failover-timeout ${MASTER} 3000`,
        `sentinel parallel-syncs ${MASTER} 1`,
        '',
      ].join('\n'));
      const proc = await launch(port, dir, [conf, '--sentinel'], 'sentinel');
      procs.push(proc);
      sentinels.push({ port, get pid() { return proc.pid; } });
    }
    for (const s of sentinels) {
      await waitFor(`sentinel ${s.port} to see the replica`, async () => {
        const replicas = (await redisCommand(s.port, 'SENTINEL', 'REPLICAS', MASTER)) as Resp[];
        return replicas.some((r) => Array.isArray(r) && flagsOf(r) === 'slave');
      });
    }
    const nodes = [
      { port: a.port, get pid() { return a.proc.pid; } },
      { port: b.port, get pid() { return b.proc.pid; } },
    ];
    let primaryIndex = 0;
    return {
      get primary() {
        return nodes[primaryIndex];
      },
      get replica() {
        return nodes[1 - primaryIndex];
      },
      sentinels,
      url: `redis+sentinel://${sentinels.map((s) => `127.0.0.1:${s.port}`).join(',')}/${MASTER}`,
      async failover() {
        const target = nodes[1 - primaryIndex];
        await waitFor('SENTINEL FAILOVER to be accepted', async () => {
          try {
            return (await redisCommand(sentinels[0].port, 'SENTINEL', 'FAILOVER', MASTER)) === 'OK';
          } catch (err) {
            // NOGOODSLAVE / INPROG right after start-up or a previous failover: try again.
            if (/NOGOODSLAVE|INPROG/.test(String(err))) return false;
            throw err;
          }
        }, 15_000, 100);
        for (const s of sentinels) {
          await waitFor(`sentinel ${s.port} to name port ${target.port} primary`, async () => {
            const addr = (await redisCommand(s.port, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', MASTER)) as Resp[];
            return Number(addr?.[1]) === target.port;
          }, 15_000);
        }
        await waitFor('the new primary to take writes', async () => /role:master/.test(String(await redisCommand(target.port, 'INFO', 'replication'))));
        primaryIndex = 1 - primaryIndex;
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

function flagsOf(fields: Resp[]): string | undefined {
  const i = fields.indexOf('flags');
  return i >= 0 ? String(fields[i + 1]) : undefined;
}

export interface RedisClusterServers {
  readonly ports: readonly number[];
  /** Seed list `127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3`. */
  readonly url: string;
  /** kill -9 one primary and start it again on its port: it keeps its slots (nodes.conf) but comes back empty. */
  restartShard(i: number): Promise<void>;
  stop(): Promise<void>;
}

/** Three primaries, no replicas, all slots assigned by `redis-cli --cluster create`. */
export async function startRedisCluster(): Promise<RedisClusterServers> {
  const dir = await mkdtemp(join(tmpdir(), 'tidings-cluster-'));
  const procs: Proc[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(procs.map((p) => p.end('SIGTERM')));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const ports: number[] = [];
    const launches: { dir: string; args: string[] }[] = [];
    for (let i = 0; i < 3; i++) {
      const nodeDir = await mkdtemp(join(dir, 'node-'));
      // The cluster bus port gets its own free port (default port+10000 may be taken or > 65535).
      const busPort = await freePort();
      const args = [...DATA_ARGS, '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000', '--cluster-port', String(busPort)];
      const { port, proc } = await launchOnFreePort(nodeDir, args);
      procs.push(proc);
      ports.push(port);
      launches.push({ dir: nodeDir, args });
    }
    await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes']);
    for (const p of ports) {
      await waitFor(`cluster node ${p} to report cluster_state:ok`, async () => /cluster_state:ok/.test(String(await redisCommand(p, 'CLUSTER', 'INFO'))), 20_000);
    }
    const restartShard = async (i: number): Promise<void> => {
      await procs[i].end('SIGKILL');
      procs[i] = await launch(ports[i], launches[i].dir, launches[i].args);
      for (const p of ports) {
        await waitFor(`cluster node ${p} to report cluster_state:ok after the restart`, async () => /cluster_state:ok/.test(String(await redisCommand(p, 'CLUSTER', 'INFO'))), 20_000);
      }
    };
    return { ports, url: ports.map((p) => `127.0.0.1:${p}`).join(','), restartShard, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    track(child);
    let out = '';
    child.stdout?.on('data', (d) => (out += String(d)));
    child.stderr?.on('data', (d) => (out += String(d)));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${out.slice(-2000)}`))));
  });
}

export interface TlsRedisServer {
  readonly port: number;
  /** `rediss://127.0.0.1:<port>` */
  readonly url: string;
  /** PEM of the CA that signed the server certificate. */
  readonly caFile: string;
  stop(): Promise<void>;
}

/**
 * A redis-server that speaks only TLS (`--port 0 --tls-port P`), with a certificate for
 * 127.0.0.1 signed by a throwaway CA made with openssl for this server alone.
 */
export async function startTlsRedis(): Promise<TlsRedisServer> {
  const dir = await mkdtemp(join(tmpdir(), 'tidings-redis-tls-'));
  const f = (name: string): string => join(dir, name);
  let proc: Proc | undefined;
  try {
    await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '1', '-subj', '/CN=tidings test CA']);
    await run('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=127.0.0.1']);
    await writeFile(f('san.ext'), 'subjectAltName=IP:127.0.0.1\n');
    await run('openssl', ['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('server.pem'), '-days', '1', '-extfile', f('san.ext')]);
    const ca = await readFile(f('ca.pem'), 'utf8');
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const logfile = f(`redis-${port}.log`);
      const child = spawn('redis-server', [...DATA_ARGS, '--port', '0', '--tls-port', String(port), '--tls-cert-file', f('server.pem'), '--tls-key-file', f('server.key'), '--tls-ca-cert-file', f('ca.pem'), '--tls-auth-clients', 'no', '--bind', '127.0.0.1', '--dir', dir, '--logfile', logfile], { stdio: 'ignore' });
      track(child);
      const p = new Proc(child);
      proc = p;
      try {
        await waitFor(`TLS redis-server on port ${port} to answer PING`, async () => {
          if (!p.alive) throw new Error(`redis-server exited with ${child.exitCode ?? child.signalCode}: ${await readFile(logfile, 'utf8').catch(() => '')}`);
          return (await tlsPing(port, ca).catch(() => false)) === true;
        }, 10_000, 20);
      } catch (err) {
        await p.end('SIGKILL');
        if (attempt >= 3) throw err;
        continue;
      }
      return {
        port,
        url: `rediss://127.0.0.1:${port}`,
        caFile: f('ca.pem'),
        async stop() {
          await p.end('SIGTERM');
          await rm(dir, { recursive: true, force: true });
        },
      };
    }
  } catch (err) {
    await proc?.end('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

function tlsPing(port: number, ca: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const sock = tlsConnect({ host: '127.0.0.1', port, ca: [ca] }, () => sock.write('*1\r\n$4\r\nPING\r\n'));
    const timer = setTimeout(() => (sock.destroy(), reject(new Error('no PONG'))), 2000);
    sock.on('data', (d) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(String(d).startsWith('+PONG'));
    });
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}
