/**
 * A real nginx (Debian's) in the foreground for tests: its own prefix, pid, logs and temp paths in a
 * fresh temp dir, listening on a free loopback port, from a config the test writes (`@DIR@` and
 * `@PORT@` are filled in). Stopped by its pid.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';

export const NGINX_BIN = '/usr/sbin/nginx';

export interface NginxServer {
  readonly port: number;
  readonly url: string;
  log(): Promise<string>;
  stop(): Promise<void>;
}

/** The lines every test config needs so that nginx writes only below its temp dir. */
export const NGINX_MAIN = `daemon off;
master_process on;
worker_processes 1;
pid @DIR@/nginx.pid;
error_log @DIR@/error.log info;
events { worker_connections 256; }
`;
export const NGINX_HTTP_PATHS = `access_log @DIR@/access.log;
  client_body_temp_path @DIR@/client_body;
  proxy_temp_path @DIR@/proxy;
  fastcgi_temp_path @DIR@/fastcgi;
  uwsgi_temp_path @DIR@/uwsgi;
  scgi_temp_path @DIR@/scgi;`;

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

export async function startNginx(config: string): Promise<NginxServer> {
  const dir = await mkdtemp(join(tmpdir(), 'tidings-nginx-'));
  const port = await freePort();
  const conf = join(dir, 'nginx.conf');
  await writeFile(conf, config.replaceAll('@DIR@', dir).replaceAll('@PORT@', String(port)));
  // -e: the error log before the config is read, so nothing is written below /var/log.
  const child: ChildProcess = spawn(NGINX_BIN, ['-p', dir, '-c', conf, '-e', join(dir, 'error.log')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (c) => (output += c));
  child.stderr!.on('data', (c) => (output += c));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const done = () => child.exitCode !== null || child.signalCode !== null;
  const log = async () => output + (await readFile(join(dir, 'error.log'), 'utf8').catch(() => ''));
  try {
    await waitFor(`nginx to listen on ${port}`, async () => {
      if (done()) throw new Error(`nginx exited: ${await log()}`);
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
        // SIGQUIT would wait for open connections; SIGTERM is nginx's fast shutdown.
        child.kill('SIGTERM');
        const t = setTimeout(() => !done() && child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(t);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
