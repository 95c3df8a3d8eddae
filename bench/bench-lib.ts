/**
 * Small process helpers for the benchmarks under bench/: free ports, a private redis-server,
 * server processes started and stopped by pid, and CPU / RSS read from /proc.
 * Deliberately independent of test/helpers (those change with the tests).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Monotonic microseconds; CLOCK_MONOTONIC is shared by every process on the machine. */
export const nowUs = (): number => Number(process.hrtime.bigint() / 1000n);

const CLK_TCK = (() => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number(r.stdout?.trim());
  return Number.isFinite(n) && n > 0 ? n : 100;
})();

/** utime + stime of a whole process (all its threads), in ms; `/proc/<pid>/stat` fields 14 and 15. */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
}

/** CPU time of the whole machine that was not idle (all cores), in ms; first line of /proc/stat. */
export function machineBusyMs(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is already in user)
  const busy = f[0] + f[1] + f[2] + f[5] + f[6] + f[7];
  return (busy * 1000) / CLK_TCK;
}

/** Resident set size in KB (`VmRSS` of /proc/<pid>/status). */
export function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') return reject(new Error('no port'));
      srv.close(() => resolve(addr.port));
    });
  });
}

/** Every child started here, so a failing run can still end them (by pid). */
const children = new Set<ChildProcess>();
export function killAllChildren(): void {
  for (const c of children) if (c.pid && c.exitCode === null && c.signalCode === null) try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ }
}
process.once('exit', killAllChildren);

export interface Proc {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly logFile: string;
  stop(): Promise<void>;
}

function track(name: string, child: ChildProcess, logFile: string): Proc {
  children.add(child);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  void exited.then(() => children.delete(child));
  return {
    name, child, logFile,
    get pid() {
      return child.pid ?? -1;
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null || !child.pid) return;
      process.kill(child.pid, 'SIGTERM');
      const t = setTimeout(() => child.pid && child.exitCode === null && process.kill(child.pid, 'SIGKILL'), 8000);
      await exited;
      clearTimeout(t);
    },
  };
}

/** Open files wanted by every process the benchmark starts (20,000 idle connections plus sockets of its own). */
export const WANT_FDS = 65536;

/**
 * `cmd args` through a shell that first raises the open-file limit (to WANT_FDS, or to the hard
 * limit where that is lower and cannot be raised), then execs `cmd`: same pid, so /proc figures
 * and signals reach `cmd` itself. Node cannot call setrlimit on itself.
 */
export function withFdLimit(cmd: string, args: string[]): [string, string[]] {
  return ['bash', ['-c', `ulimit -n ${WANT_FDS} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"`, cmd, ...args]];
}

/** The open-file limit a process started through withFdLimit gets. */
export function raisedFdLimit(): number {
  const [c, a] = withFdLimit('sh', ['-c', 'ulimit -n']);
  const n = Number(spawnSync(c, a, { encoding: 'utf8' }).stdout.trim());
  return Number.isFinite(n) && n > 0 ? n : 1024;
}

/** Spawns `cmd args` (open-file limit raised) with stdout+stderr into `<dir>/<name>.log`. */
export function spawnLogged(name: string, dir: string, cmd: string, args: string[], env: NodeJS.ProcessEnv): Proc {
  const logFile = join(dir, `${name}.log`);
  const fd = openSync(logFile, 'a');
  const [c, a] = withFdLimit(cmd, args);
  const child = spawn(c, a, { env, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  return track(name, child, logFile);
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(1000, () => done(false));
    s.on('error', () => done(false));
    s.on('connect', () => s.write('*1\r\n$4\r\nPING\r\n'));
    s.on('data', (d) => done(String(d).startsWith('+PONG')));
  });
}

/** A fresh, empty, non-persistent redis-server on a free loopback port (never 6379). */
export async function startRedis(dir: string, name = 'redis'): Promise<Proc & { port: number; url: string }> {
  const port = await freePort();
  const p = spawnLogged(name, dir, 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { PATH: process.env.PATH });
  await waitUntil(`${name} on ${port}`, () => ping(port), 10_000, p);
  return Object.assign(p, { port, url: `redis://127.0.0.1:${port}` });
}

export async function waitUntil(what: string, check: () => Promise<boolean> | boolean, timeoutMs: number, proc?: Proc): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc && (proc.child.exitCode !== null || proc.child.signalCode !== null)) {
      throw new Error(`${proc.name} exited (${proc.child.exitCode ?? proc.child.signalCode}) while waiting for ${what}; log: ${tail(proc.logFile)}`);
    }
    if (await Promise.resolve().then(check).catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${proc ? `; log: ${tail(proc.logFile)}` : ''}`);
    await sleep(50);
  }
}

export function tail(file: string, chars = 2000): string {
  try {
    return readFileSync(file, 'utf8').slice(-chars);
  } catch {
    return '(no log)';
  }
}

export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTP request over `agent`; resolves with status, headers and body text. */
export function httpRequest(agent: Agent, url: string, method: string, body?: string, headers: Record<string, string> = {}): Promise<HttpAnswer> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({
      agent, host: u.hostname, port: u.port, path: u.pathname + u.search, method,
      headers: body === undefined ? headers : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...headers },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** One Redis command over a fresh connection; resolves with the reply's text (simple, bulk or error). */
export function redisCommand(port: number, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port });
    let buf = Buffer.alloc(0);
    s.setTimeout(5000, () => {
      s.destroy();
      reject(new Error(`redis ${args[0]} on ${port}: timeout`));
    });
    s.on('error', reject);
    s.on('connect', () => s.write(`*${args.length}\r\n${args.map((x) => `$${Buffer.byteLength(x)}\r\n${x}\r\n`).join('')}`));
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const nl = buf.indexOf('\r\n');
      if (nl < 0) return;
      const head = buf.subarray(0, nl).toString();
      if (head[0] === '$') {
        const len = Number(head.slice(1));
        if (buf.length < nl + 2 + len) return;
        s.end();
        resolve(buf.subarray(nl + 2, nl + 2 + len).toString());
      } else {
        s.end();
        if (head[0] === '-') reject(new Error(`redis ${args[0]}: ${head.slice(1)}`));
        else resolve(head.slice(1));
      }
    });
  });
}

export interface RedisCounters {
  /** calls per command (lower case), from INFO commandstats */
  readonly calls: ReadonlyMap<string, number>;
  readonly netInputBytes: number;
  readonly netOutputBytes: number;
  /** length of this INFO reply, which the next snapshot's output bytes include */
  readonly replyBytes: number;
}

/** INFO commandstats + stats of the redis-server on `port`. */
export async function redisCounters(port: number): Promise<RedisCounters> {
  const text = await redisCommand(port, ['INFO', 'commandstats', 'stats']);
  const calls = new Map<string, number>();
  let netInputBytes = 0;
  let netOutputBytes = 0;
  for (const line of text.split('\r\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line);
    if (m) calls.set(m[1].toLowerCase(), Number(m[2]));
    const n = /^total_net_(input|output)_bytes:(\d+)/.exec(line);
    if (n) n[1] === 'input' ? (netInputBytes = Number(n[2])) : (netOutputBytes = Number(n[2]));
  }
  return { calls, netInputBytes, netOutputBytes, replyBytes: Buffer.byteLength(text) + 16 };
}

export interface RedisDelta {
  /** commands of the system (this benchmark's INFO excluded) */
  readonly commands: number;
  readonly byCommand: ReadonlyMap<string, number>;
  readonly inBytes: number;
  readonly outBytes: number;
}

/** What the system sent Redis between two snapshots; the snapshots' own INFO traffic taken out. */
export function redisDelta(a: RedisCounters, b: RedisCounters): RedisDelta {
  const byCommand = new Map<string, number>();
  let commands = 0;
  for (const [k, v] of b.calls) {
    let d = v - (a.calls.get(k) ?? 0);
    if (k === 'info') d -= 1;
    if (d > 0) {
      byCommand.set(k, d);
      commands += d;
    }
  }
  const infoRequest = 40;
  return { commands, byCommand, inBytes: b.netInputBytes - a.netInputBytes - infoRequest, outBytes: b.netOutputBytes - a.netOutputBytes - a.replyBytes };
}
