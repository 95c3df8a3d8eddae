/**
 * An nginx in front of tidings' two nodes for the relayed-poll figure: one port balances plain
 * round-robin over both nodes (no affinity: about every other poll of an Engine.IO session lands
 * on the node that does not hold it), another port sends everything to node 2 (the direct path
 * through the same proxy, so the proxy's own hop is in both figures). One nginx process
 * (`master_process off`), unbuffered like the shipped configs want for long-polling.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { join } from 'node:path';
import { freePort, httpRequest, spawnLogged, waitUntil, type Proc } from './bench-lib.js';

export interface Balancer extends Proc {
  /** round-robin over node 1 and node 2 */
  readonly rrUrl: string;
  /** node 2 only */
  readonly pinnedUrl: string;
}

export async function startBalancer(dir: string, node1: string, node2: string): Promise<Balancer> {
  const [rr, pinned] = [await freePort(), await freePort()];
  const hostOf = (url: string) => new URL(url).host;
  mkdirSync(dir, { recursive: true });
  const conf = join(dir, 'balancer.conf');
  const proxy = (upstream: string) => [
    `      proxy_pass http://${upstream};`,
    '      proxy_http_version 1.1;',
    '      proxy_set_header Connection "";',
    '      proxy_set_header Host $http_host;',
    '      proxy_buffering off;',
    '      proxy_read_timeout 60s;',
  ].join('\n');
  writeFileSync(conf, [
    'worker_processes 1;',
    'daemon off;',
    'master_process off;',
    `error_log ${join(dir, 'balancer-error.log')} warn;`,
    `pid ${join(dir, 'balancer.pid')};`,
    'events { worker_connections 4096; }',
    'http {',
    '  access_log off;',
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${join(dir, `balancer-${t}`)};`),
    `  upstream both { server ${hostOf(node1)}; server ${hostOf(node2)}; keepalive 32; }`,
    `  upstream two { server ${hostOf(node2)}; keepalive 32; }`,
    `  server { listen 127.0.0.1:${rr}; location / {\n${proxy('both')}\n    } location = /bench-health { return 200 "ok"; } }`,
    `  server { listen 127.0.0.1:${pinned}; location / {\n${proxy('two')}\n    } }`,
    '}',
    '',
  ].join('\n'));
  const p = spawnLogged('balancer', dir, 'nginx', ['-p', dir, '-c', conf], { PATH: process.env.PATH });
  const agent = new Agent({ keepAlive: false });
  const rrUrl = `http://127.0.0.1:${rr}`;
  await waitUntil(`balancer at ${rrUrl}`, async () => (await httpRequest(agent, `${rrUrl}/bench-health`, 'GET')).status === 200, 10_000, p);
  return Object.assign(p, { rrUrl, pinnedUrl: `http://127.0.0.1:${pinned}` });
}
