/**
 * Systems B and B' of the messaging benchmark: nginx with Nchan (Debian `libnginx-mod-nchan`),
 * one nginx with the memory store, or two nginx on one Redis. Each nginx runs as one process
 * (`master_process off`, one worker's work in that process), so /proc/<pid>/stat holds all its CPU.
 * `POST /pub?id=<channel>` publishes, a WebSocket to `/sub?id=<channel>` subscribes.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { join } from 'node:path';
import { freePort, httpRequest, spawnLogged, waitUntil, type Proc } from './bench-lib.js';

const MODULE = '/usr/lib/nginx/modules/ngx_nchan_module.so';

/**
 * Makes sure nginx and the Nchan module are there, installing `libnginx-mod-nchan` with apt-get
 * when they are missing (as root); returns null when ready, else why not.
 */
export function ensureNchan(log: (s: string) => void): string | null {
  const have = () => existsSync(MODULE) && spawnSync('nginx', ['-v']).status === 0;
  if (have()) return null;
  if (process.getuid?.() !== 0) return `nginx or ${MODULE} missing and not root: cannot install libnginx-mod-nchan`;
  log('installing libnginx-mod-nchan (apt-get)');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'libnginx-mod-nchan'], { env, stdio: 'inherit' });
  if (r.status !== 0) {
    spawnSync('apt-get', ['update'], { env, stdio: 'inherit' });
    r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'libnginx-mod-nchan'], { env, stdio: 'inherit' });
  }
  // The package enables its module and may start the distribution's nginx service: that one is not ours, leave it.
  return have() ? null : 'apt-get install libnginx-mod-nchan failed';
}

export function nchanVersions(): string {
  const q = spawnSync('dpkg-query', ['-W', '-f', '${Version}', 'libnginx-mod-nchan'], { encoding: 'utf8' });
  const n = spawnSync('nginx', ['-v'], { encoding: 'utf8' });
  return `${(n.stderr || n.stdout).trim().replace('nginx version: ', '')}, libnginx-mod-nchan ${q.status === 0 ? q.stdout.trim() : '?'}`;
}

function config(dir: string, name: string, port: number, redisPort: number | null, maxConns: number): string {
  const redis = redisPort === null ? '' : ' nchan_redis_pass bench_redis;';
  return [
    `load_module ${MODULE};`,
    'worker_processes 1;',
    'daemon off;',
    'master_process off;',
    `error_log ${join(dir, `${name}-error.log`)} warn;`,
    `pid ${join(dir, `${name}.pid`)};`,
    `events { worker_connections ${maxConns}; }`,
    'http {',
    '  access_log off;',
    `  client_body_temp_path ${join(dir, `${name}-body`)};`,
    `  proxy_temp_path ${join(dir, `${name}-proxy`)};`,
    `  fastcgi_temp_path ${join(dir, `${name}-fcgi`)};`,
    `  uwsgi_temp_path ${join(dir, `${name}-uwsgi`)};`,
    `  scgi_temp_path ${join(dir, `${name}-scgi`)};`,
    ...(redisPort === null ? [] : [`  upstream bench_redis { nchan_redis_server redis://127.0.0.1:${redisPort}; }`]),
    '  server {',
    `    listen 127.0.0.1:${port};`,
    `    location = /pub { nchan_publisher; nchan_channel_id $arg_id;${redis} }`,
    `    location = /sub { nchan_subscriber; nchan_channel_id $arg_id;${redis} }`,
    '    location = /health { return 200 "ok"; }',
    '  }',
    '}',
    '',
  ].join('\n');
}

export async function startNginx(dir: string, name: string, redisPort: number | null, maxConns: number): Promise<Proc & { url: string }> {
  const port = await freePort();
  mkdirSync(dir, { recursive: true });
  const conf = join(dir, `${name}.conf`);
  writeFileSync(conf, config(dir, name, port, redisPort, maxConns));
  const p = spawnLogged(name, dir, 'nginx', ['-p', dir, '-c', conf], { PATH: process.env.PATH });
  const url = `http://127.0.0.1:${port}`;
  const agent = new Agent({ keepAlive: false });
  await waitUntil(`${name} at ${url}`, async () => (await httpRequest(agent, `${url}/health`, 'GET')).status === 200, 10_000, p);
  return Object.assign(p, { url });
}
