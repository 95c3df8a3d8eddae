import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';

export type ProxyKind = 'nginx' | 'apache' | 'haproxy';

/** The configuration each proxy ships with, relative to the checkout. */
export const SHIPPED: Record<ProxyKind, string> = {
  nginx: 'deploy/nginx/tidings.conf',
  apache: 'deploy/apache/tidings.conf',
  haproxy: 'deploy/haproxy/haproxy.cfg',
};

/** The upstream addresses the shipped files name (docker-compose.yml's service names). */
export const SHIPPED_UPSTREAMS = ['tidings1:8009', 'tidings2:8009', 'tidings3:8009'];

export interface RunningProxy {
  kind: ProxyKind;
  /** http://127.0.0.1:<port> */
  url: string;
  /** The file the proxy runs from: the shipped one with only addresses, ports (and the idle timeout, if asked) replaced. */
  config: string;
  /** Everything the proxy wrote to stdout and stderr. */
  output(): string;
  stop(): Promise<void>;
}

export interface ProxyOptions {
  /** `host:port` of the three tidings nodes, in place of the shipped upstream names. */
  upstreams: string[];
  /** Replaces the shipped idle timeout (seconds), to prove the keepalives outlive a short one. */
  idleTimeoutSeconds?: number;
  /** A deliberately broken variant of the shipped file (e.g. one that drops the upgrade); must change the text. */
  edit?: (text: string) => string;
}

const root = new URL('../../../', import.meta.url).pathname;

/** Plain text substitution that must hit: a shipped file that changed shape fails the test, not silently passes. */
function replace(text: string, from: string | RegExp, to: string, what: string): string {
  const hit = typeof from === 'string' ? text.includes(from) : from.test(text);
  if (!hit) throw new Error(`the shipped config has no ${what} (${String(from)}) to substitute`);
  return typeof from === 'string' ? text.split(from).join(to) : text.replace(from, to);
}

/** The shipped file of `kind` with the listen port, the upstream addresses and optionally the idle timeout substituted. */
export function substituted(kind: ProxyKind, port: number, o: ProxyOptions): string {
  let text = readFileSync(join(root, SHIPPED[kind]), 'utf8');
  SHIPPED_UPSTREAMS.forEach((u, i) => (text = replace(text, u, o.upstreams[i], `upstream ${u}`)));
  const t = o.idleTimeoutSeconds;
  switch (kind) {
    case 'nginx':
      text = replace(text, 'listen 80;', `listen 127.0.0.1:${port};`, 'listen 80');
      if (t !== undefined) text = replace(text, /proxy_read_timeout 75s;/g, `proxy_read_timeout ${t}s;`, 'proxy_read_timeout');
      break;
    case 'apache':
      text = replace(text, '<VirtualHost *:80>', `<VirtualHost 127.0.0.1:${port}>`, 'VirtualHost *:80');
      if (t !== undefined) {
        text = replace(text, /ProxyTimeout 75\n/g, `ProxyTimeout ${t}\n`, 'ProxyTimeout');
        text = replace(text, /Timeout 75\n/g, `Timeout ${t}\n`, 'Timeout');
      }
      break;
    case 'haproxy':
      text = replace(text, 'bind :80', `bind 127.0.0.1:${port}`, 'bind :80');
      if (t !== undefined) text = replace(text, /timeout (client|server|tunnel) 75s/g, `timeout $1 ${t}s`, 'timeout client/server/tunnel');
      break;
  }
  if (o.edit) {
    const edited = o.edit(text);
    if (edited === text) throw new Error('the edit of the shipped config changed nothing');
    text = edited;
  }
  return text;
}

const APACHE_MODULES = ['mpm_event', 'authz_core', 'proxy', 'proxy_http', 'proxy_balancer', 'slotmem_shm', 'lbmethod_byrequests', 'headers', 'setenvif'];

/** The command line: what a test needs beyond the shipped file (pid, logs, modules) goes here, not into the file. */
function command(kind: ProxyKind, file: string, dir: string, port: number): [string, string[]] {
  switch (kind) {
    case 'nginx':
      return ['nginx', ['-c', file, '-p', dir, '-g', `daemon off; pid ${join(dir, 'nginx.pid')};`]];
    case 'haproxy':
      return ['haproxy', ['-f', file, '-db']];
    case 'apache':
      return ['apache2', [
        '-d', dir, '-f', file, '-DFOREGROUND',
        ...APACHE_MODULES.flatMap((m) => ['-C', `LoadModule ${m}_module /usr/lib/apache2/modules/mod_${m}.so`]),
        '-C', `Listen 127.0.0.1:${port}`,
        '-C', 'ServerName 127.0.0.1',
        '-C', `PidFile ${join(dir, 'apache2.pid')}`,
        '-C', `DefaultRuntimeDir ${dir}`,
        '-C', `Mutex file:${dir} default`,
        '-C', 'ErrorLog /dev/stderr',
        '-C', 'User www-data',
        '-C', 'Group www-data',
      ]];
  }
}

const live = new Set<ChildProcess>();
let exitHook = false;

/** Starts the real Debian proxy from the shipped file on a free loopback port; resolves once it answers. */
export async function startProxy(kind: ProxyKind, o: ProxyOptions): Promise<RunningProxy> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), `tidings-${kind}-`));
  const file = join(dir, kind === 'haproxy' ? 'haproxy.cfg' : 'tidings.conf');
  const config = substituted(kind, port, o);
  writeFileSync(file, config);
  const [cmd, args] = command(kind, file, dir, port);
  // A file, not a pipe: Node's pipes are socket pairs, which nginx cannot open as /dev/stdout.
  const logFile = join(dir, 'output.log');
  const fd = openSync(logFile, 'a');
  const child = spawn(cmd, args, { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  live.add(child);
  if (!exitHook) {
    exitHook = true;
    process.once('exit', () => {
      for (const c of live) if (c.pid) try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ }
    });
  }
  const output = () => {
    try {
      return readFileSync(logFile, 'utf8');
    } catch {
      return '';
    }
  };
  const exited = new Promise<void>((resolve) => child.once('exit', () => {
    live.delete(child);
    resolve();
  }));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(`${kind} to answer on ${url}`, async () => {
      if (child.exitCode !== null) throw new Error(`${kind} exited with ${child.exitCode}: ${output()}`);
      const r = await fetch(`${url}/health/live`, { signal: AbortSignal.timeout(2000) }).catch(() => null);
      if (!r) return false;
      await r.arrayBuffer();
      return r.status === 200;
    }, 15_000, 100);
  } catch (e) {
    const text = output();
    await stop();
    throw new Error(`${String(e)}\n${kind} output:\n${text}`);
  }
  return { kind, url, config, output, stop };
}

/**
 * An `edit` for ProxyOptions: the shipped file without every line that contains one of `needles`
 * (a deliberate breakage, e.g. no Upgrade header). Each needle must hit, so a shipped file that
 * changed shape fails the test rather than silently testing an unbroken config.
 */
export function withoutLines(...needles: string[]): (text: string) => string {
  return (text) => {
    let lines = text.split('\n');
    for (const n of needles) {
      const kept = lines.filter((l) => !l.includes(n));
      if (kept.length === lines.length) throw new Error(`the shipped config has no line with ${JSON.stringify(n)} to remove`);
      lines = kept;
    }
    return lines.join('\n');
  };
}
