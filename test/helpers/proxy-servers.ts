/**
 * Real HAProxy and Apache httpd (Debian's) in the foreground for tests, each with its own temp dir
 * for pid, logs and runtime files, listening on a free loopback port, from a config the test
 * writes (`@DIR@` and `@PORT@` are filled in). Stopped by pid. nginx has its own helper (nginx-server.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';

export const HAPROXY_BIN = '/usr/sbin/haproxy';
export const APACHE_BIN = '/usr/sbin/apache2';
export const APACHE_MODULES = '/usr/lib/apache2/modules';

export interface ProxyServer {
  readonly port: number;
  readonly url: string;
  log(): Promise<string>;
  stop(): Promise<void>;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

async function startProxy(name: string, config: string, args: (conf: string, dir: string) => string[], bin: string): Promise<ProxyServer> {
  const dir = await mkdtemp(join(tmpdir(), `tidings-${name}-`));
  const port = await freePort();
  const conf = join(dir, `${name}.conf`);
  await writeFile(conf, config.replaceAll('@DIR@', dir).replaceAll('@PORT@', String(port)));
  const child: ChildProcess = spawn(bin, args(conf, dir), { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH } });
  let output = '';
  child.stdout!.on('data', (c) => (output += c));
  child.stderr!.on('data', (c) => (output += c));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const done = () => child.exitCode !== null || child.signalCode !== null;
  const log = async () => output + (await readFile(join(dir, 'error.log'), 'utf8').catch(() => ''));
  try {
    await waitFor(`${name} to listen on ${port}`, async () => {
      if (done()) throw new Error(`${name} exited: ${await log()}`);
      return accepts(port);
    }, 15_000, 50);
  } catch (e) {
    if (!done()) child.kill('SIGKILL');
    await exited;
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    log,
    async stop() {
      if (!done()) {
        child.kill('SIGTERM');
        const t = setTimeout(() => !done() && child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(t);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** `haproxy -db` (foreground, no daemon). */
export function startHaproxy(config: string): Promise<ProxyServer> {
  return startProxy('haproxy', config, (conf) => ['-db', '-f', conf], HAPROXY_BIN);
}

/** `apache2 -X` (one process in the foreground) on a complete config that loads its own modules. */
export function startApache(config: string): Promise<ProxyServer> {
  return startProxy('apache', config, (conf, dir) => ['-X', '-f', conf, '-d', dir], APACHE_BIN);
}
