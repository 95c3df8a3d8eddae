// The webmail page in headless Chromium against three `tidings serve` processes on one Redis,
// behind the shipped nginx config (round robin), with a real Dovecot delivering: kill -9 the node that holds the
// page's socket, and the page reconnects to another node and shows the mail delivered during the
// gap exactly once (it resumes from the offset of the last event it saw).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ADMIN_TOKEN } from '../helpers/config-dir.js';
import { startDovecot, type Dovecot } from '../helpers/dovecot.js';
import { startProxy, type RunningProxy } from '../helpers/proxies.js';
import { startRedis, type RedisServer } from '../helpers/redis-servers.js';
import { waitFor } from '../helpers/wait.js';
import { startCluster, type Cluster } from '../cluster/fixture.js';

const CHROMIUM = '/usr/bin/chromium';
const NGINX = '/usr/sbin/nginx';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];
const NOTIFY = '/preliminary/http-notify/v1/notify';
const ALICE = { login: 'alice@example.com', password: 'alice-pw' };
const WAIT_MS = 20_000;

const skip = !existsSync(CHROMIUM) ? `${CHROMIUM} is absent (apt-get install -y chromium)` : !existsSync(NGINX) ? `${NGINX} is absent (apt-get install -y nginx)` : false;

function mail(subject: string): string {
  return ['From: Sender <sender@example.net>', 'To: alice@example.com', `Subject: ${subject}`, 'MIME-Version: 1.0', 'Content-Type: text/plain; charset=utf-8', '', `Body of ${subject}`, ''].join('\n');
}

/** The index of the node whose status counts a connection (the page's socket is the only one); `dead` is left out. */
async function holderOf(cluster: Cluster, dead = -1): Promise<number> {
  const via = cluster.urls[dead === 0 ? 1 : 0];
  const r = await fetch(`${via}/api/admin/status`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  const j = (await r.json()) as { members: { nodeId: string; connections: number }[] };
  const holders = j.members.filter((m) => m.connections > 0).map((m) => cluster.ids.indexOf(m.nodeId)).filter((i) => i !== dead);
  assert.ok(holders.length <= 1, JSON.stringify(j.members));
  return holders.length === 1 ? holders[0] : -1;
}

/** Heartbeats carry the connection counts, so the holder shows within a beat or two. */
const waitForHolder = (cluster: Cluster, dead = -1): Promise<number> => waitFor('a node to report the page\'s socket', async () => {
  const h = await holderOf(cluster, dead);
  return h >= 0 ? h + 1 : 0;
}, 15_000, 200).then((h) => h - 1);

const rows = (page: Page) => page.$$eval('#mails > li', (lis) => lis.map((li) => ({ id: li.getAttribute('data-id'), subject: li.querySelector('.subject')?.textContent })));

describe('webmail page: the node holding its socket is killed', { skip }, () => {
  let redis: RedisServer | undefined;
  let cluster: Cluster | undefined;
  let nginx: RunningProxy | undefined;
  let dovecot: Dovecot | undefined;
  let browser: Browser | undefined;
  let page: Page;
  const pageErrors: string[] = [];

  before(async () => {
    redis = await startRedis();
    cluster = await startCluster(redis.url, {
      'tidings.notify.login': 'pushuser',
      'tidings.notify.password': 's3cr@t',
      'com.openexchange.websockets.grizzly.remote.delayDuration': 100,
      'tidings.http.trustedProxies': '127.0.0.1',
    }, 'w');
    // deploy/nginx/tidings.conf as shipped, only its listen port and upstream addresses replaced.
    nginx = await startProxy('nginx', { upstreams: cluster.urls.map((u) => new URL(u).host) });
    dovecot = await startDovecot({ pushUrl: `http://pushuser:s3cr%40t@${new URL(nginx.url).host}${NOTIFY}`, users: [ALICE] });
    await dovecot.setPushMetadata(ALICE.login, ALICE.password, 'user=3@1');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, timeout: 30_000 });
  });
  after(async () => {
    await browser?.close();
    await dovecot?.stop();
    await nginx?.stop();
    await cluster?.stop();
    await redis?.stop();
  });

  it('reconnects to another node and shows the mail delivered during the gap exactly once', async () => {
    page = await browser!.newPage();
    page.setDefaultTimeout(WAIT_MS);
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(nginx!.url);
    await page.fill('#login', ALICE.login);
    await page.fill('#password', ALICE.password);
    await page.click('#login-submit');
    await page.locator('#badge[data-state="connected"][data-transport="websocket"]').waitFor();

    await dovecot!.deliver({ from: 'sender@example.net', to: ALICE.login, rawMessage: mail('before') });
    await page.locator('#mails > li[data-id="1"]').waitFor();

    const victim = await waitForHolder(cluster!);
    cluster!.nodes[victim].kill('SIGKILL');
    await cluster!.nodes[victim].exited;
    await page.locator('#badge:not([data-state="connected"])').waitFor();
    // Delivered while the page has no connection: only the log can bring it to the page.
    await dovecot!.deliver({ from: 'sender@example.net', to: ALICE.login, rawMessage: mail('during the gap') });

    await page.locator('#badge[data-state="connected"]').waitFor();
    await page.locator('#mails > li[data-id="2"]').waitFor();
    assert.notEqual(await waitForHolder(cluster!, victim), victim);
    // A later mail arrives live, and nothing came twice.
    await dovecot!.deliver({ from: 'sender@example.net', to: ALICE.login, rawMessage: mail('after') });
    await page.locator('#mails > li[data-id="3"]').waitFor();
    assert.deepEqual(await rows(page), [
      { id: '3', subject: 'after' },
      { id: '2', subject: 'during the gap' },
      { id: '1', subject: 'before' },
    ]);
    assert.deepEqual(pageErrors, []);
  });

  it('reloads when the node it reconnects to cannot replay what it missed ("not recovered")', async () => {
    // Keep one event per user: two mails during the next gap are more than the history holds.
    const alive = cluster!.nodes.map((n, i) => (n.child.exitCode === null && n.child.signalCode === null ? i : -1)).filter((i) => i >= 0);
    for (const i of alive) {
      const file = join(cluster!.dirs[i].dir, 'tidings.properties');
      writeFileSync(file, readFileSync(file, 'utf8') + 'tidings.history.size=1\n');
    }
    const reload = await fetch(`${cluster!.urls[alive[0]]}/api/admin/reload`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    assert.equal(reload.status, 200);
    const victim = await waitForHolder(cluster!, cluster!.nodes.findIndex((_, i) => !alive.includes(i)));
    let loads = 0;
    page.on('load', () => loads++);
    cluster!.nodes[victim].kill('SIGKILL');
    await cluster!.nodes[victim].exited;
    await page.locator('#badge:not([data-state="connected"])').waitFor();
    await dovecot!.deliver({ from: 'sender@example.net', to: ALICE.login, rawMessage: mail('missed one') });
    await dovecot!.deliver({ from: 'sender@example.net', to: ALICE.login, rawMessage: mail('missed two') });
    // The reconnect is told "not recovered" and the page reloads: the inbox as it is now, no stale list.
    await waitFor('the page to reload', () => loads >= 1, WAIT_MS);
    await page.locator('#inbox-view').waitFor({ state: 'visible' });
    await page.locator('#badge[data-state="connected"]').waitFor();
    assert.equal(await page.locator('#mails > li').count(), 0);
    await dovecot!.deliver({ from: 'sender@example.net', to: ALICE.login, rawMessage: mail('live again') });
    await page.locator('#mails > li[data-id="6"]').waitFor();
    assert.deepEqual(await rows(page), [{ id: '6', subject: 'live again' }]);
    assert.deepEqual(pageErrors, []);
  });
});
