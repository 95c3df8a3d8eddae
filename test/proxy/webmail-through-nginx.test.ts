// The demo webmail page in real headless Chromium through the shipped nginx config, round robin in
// front of three nodes on one Redis: WebSocket first; then `tidings config set
// com.openexchange.websockets.enabled false` for the user makes the page fall back to polling (the
// badge says so) and new mail still shows; the same through an nginx that strips Upgrade.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startCluster, type Cluster } from '../cluster/fixture.js';
import { push } from '../helpers/node.js';
import { BIN, run } from '../helpers/process-node.js';
import { startProxy, type RunningProxy } from '../helpers/proxies.js';
import { startRedis, type RedisServer } from '../helpers/redis-servers.js';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];
const ALICE = { login: 'alice@example.com', password: 'alice-pw', id: 3, context: 1 };
const SWITCH = 'com.openexchange.websockets.enabled';
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is absent: install Debian's chromium to run the browser test`;

describe('the webmail page in Chromium through nginx in front of three nodes', { skip }, () => {
  let redis: RedisServer | undefined;
  let cluster: Cluster | undefined;
  let nginx: RunningProxy | undefined;
  let stripping: RunningProxy | undefined;
  let browser: Browser | undefined;
  const pageErrors: string[] = [];
  let uid = 0;

  before(async () => {
    redis = await startRedis();
    cluster = await startCluster(redis.url, { 'tidings.http.trustedProxies': '127.0.0.1', 'com.openexchange.websockets.grizzly.remote.delayDuration': 0 }, 'wb');
    const upstreams = cluster.urls.map((u) => new URL(u).host);
    nginx = await startProxy('nginx', { upstreams });
    // An nginx that does not pass the upgrade on, as some proxies in front of webmail do.
    stripping = await startProxy('nginx', { upstreams, edit: (t) => t.replace('proxy_set_header Upgrade $http_upgrade;', 'proxy_set_header Upgrade "";') });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, timeout: 30_000 });
  });

  after(async () => {
    await browser?.close();
    await nginx?.stop();
    await stripping?.stop();
    await cluster?.stop();
    await redis?.stop();
  });

  async function signIn(url: string): Promise<Page> {
    const page = await (await browser!.newContext()).newPage();
    page.setDefaultTimeout(15_000);
    page.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`));
    await page.goto(url);
    await page.fill('#login', ALICE.login);
    await page.fill('#password', ALICE.password);
    await page.click('#login-submit');
    await page.locator('#inbox-view').waitFor({ state: 'visible' });
    return page;
  }

  /** A new mail pushed through the proxy shows up on the page. */
  async function mailShows(page: Page, via: string): Promise<void> {
    const id = ++uid;
    const subject = `Mail ${id} via ${new URL(via).port}`;
    const r = await push(via, { context: ALICE.context, user: ALICE.id, event: 'ox:mail:new', data: { folder: 'INBOX', id, uidValidity: 1, from: 'Tester <t@example.net>', subject, snippet: 'hi', unread: id } });
    assert.equal(r.status, 202);
    await page.locator('#mails > li .subject', { hasText: subject }).waitFor();
  }

  async function cli(...args: string[]): Promise<string> {
    const r = await run(process.execPath, [BIN, ...args, '--config', cluster!.dirs[0].dir, '--url', cluster!.urls[0]]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout;
  }

  it('connects over WebSocket through nginx and shows new mail', async () => {
    const page = await signIn(nginx!.url);
    await page.locator('#badge[data-state="connected"][data-transport="websocket"]').waitFor();
    await mailShows(page, nginx!.url);
    await page.context().close();
  });

  it('with WebSockets switched off for the user it falls back to polling, says so, and still shows new mail', async () => {
    const page = await signIn(nginx!.url);
    await page.locator('#badge[data-state="connected"][data-transport="websocket"]').waitFor();
    assert.match(await cli('config', 'set', SWITCH, 'false', '--context', '1', '--user', '3'), /set com\.openexchange\.websockets\.enabled = false for user 3@1/);
    try {
      // The switch applies to new connections: the next page load connects again.
      await page.reload();
      await page.locator('#badge[data-state="connected"][data-transport="polling"]').waitFor();
      assert.match((await page.textContent('#badge')) ?? '', /Connected · long-polling/);
      await mailShows(page, nginx!.url);
      await mailShows(page, nginx!.url);
      // Still polling: the upgrade was refused, round robin over three nodes did not lose the session.
      assert.equal(await page.locator('#badge').getAttribute('data-transport'), 'polling');
    } finally {
      await cli('config', 'unset', SWITCH, '--context', '1', '--user', '3');
      await page.context().close();
    }
  });

  it('through an nginx that strips Upgrade it stays on polling and still shows new mail', async () => {
    const page = await signIn(stripping!.url);
    await page.locator('#badge[data-state="connected"][data-transport="polling"]').waitFor();
    await mailShows(page, stripping!.url);
    await mailShows(page, stripping!.url);
    assert.equal(await page.locator('#badge').getAttribute('data-transport'), 'polling');
    assert.equal(await page.locator('#badge').getAttribute('data-state'), 'connected');
    await page.context().close();
  });

  it('logged no error in the page', () => {
    assert.deepEqual(pageErrors, []);
  });
});
