// The webmail page in real headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core): sign in through the form, a real Dovecot delivers, the mail appears live and
// the badge says connected over WebSocket. `TIDINGS_SCREENSHOT=1` saves docs/webmail.png.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { startDovecot, type Dovecot } from '../helpers/dovecot.js';
import { startNode, type TestNode } from '../helpers/node.js';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];
const NOTIFY = '/preliminary/http-notify/v1/notify';
const ALICE = { login: 'alice@example.com', password: 'alice-pw' };
/** dist/test/integration/ → the repository root (the test runs compiled). */
const SCREENSHOT = fileURLToPath(new URL('../../../docs/webmail.png', import.meta.url));
const WAIT_MS = 15_000;

const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is absent: install Debian's chromium (apt-get install -y chromium) to run the browser test`;

function mail(from: string, subject: string, body: string): string {
  return [`From: ${from}`, 'To: alice@example.com', `Subject: ${subject}`, 'MIME-Version: 1.0', 'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 8bit', '', body, ''].join('\n');
}

const q = (s: string): string => `=?utf-8?b?${Buffer.from(s, 'utf8').toString('base64')}?=`;

// Oldest first; the page shows the newest on top.
const MAILS = [
  { from: 'Priya Raman <priya@example.com>', subject: 'Lunch on Thursday?', body: 'Hi Alice, the new place around the corner opens on Thursday. Shall we try it at 12:30? I can book a table for four.' },
  { from: `${q('Jürgen Müller')} <juergen@example.net>`, subject: q('Grüße aus Köln'), body: 'Hallo Alice, die Fotos vom Wochenende sind angekommen. Ich schicke dir heute Abend den Link zum Album.' },
  { from: '"Build Bot" <ci@example.org>', subject: 'main is green again', body: 'All 214 tests passed in 6 min 12 s on commit 4f2a9c1. The flaky reconnect test was fixed by the last merge.' },
  { from: 'Sender Example <sender@example.net>', subject: 'Your inbox is live', body: 'This mail went from LMTP through Dovecot to tidings and over a WebSocket into this page, without a reload.' },
];

describe('webmail page in headless Chromium', { skip }, () => {
  let n: TestNode;
  let dovecot: Dovecot | undefined;
  let browser: Browser | undefined;
  let context: BrowserContext;
  let page: Page;
  const pageErrors: string[] = [];

  before(async () => {
    n = await startNode({ properties: { 'tidings.notify.login': 'pushuser', 'tidings.notify.password': 's3cr@t' } });
    dovecot = await startDovecot({ pushUrl: `http://pushuser:s3cr%40t@${new URL(n.url).host}${NOTIFY}`, users: [ALICE] });
    await dovecot.setPushMetadata(ALICE.login, ALICE.password, 'user=3@1');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, timeout: 30_000 });
    context = await browser.newContext({ viewport: { width: 960, height: 700 }, deviceScaleFactor: 2, locale: 'en-GB', timezoneId: 'Europe/Berlin' });
    page = await context.newPage();
    page.setDefaultTimeout(WAIT_MS);
    page.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') pageErrors.push(`console: ${m.text()}`);
    });
  });

  after(async () => {
    await browser?.close();
    await dovecot?.stop();
    await n?.stop();
  });

  it('serves the page, its assets and the Socket.IO client with the right content types', async () => {
    for (const [path, type] of [
      ['/', /^text\/html; charset=utf-8/],
      ['/app.js', /^text\/javascript/],
      ['/style.css', /^text\/css/],
      ['/assets/socket.io.min.js', /^text\/javascript/],
    ] as const) {
      const r = await fetch(`${n.url}${path}`);
      assert.equal(r.status, 200, path);
      assert.match(r.headers.get('content-type') ?? '', type, path);
      assert.ok((await r.arrayBuffer()).byteLength > 100, path);
    }
  });

  it('signs in through the form and connects over WebSocket', async () => {
    await page.goto(n.url);
    await page.locator('#login-view').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#inbox-view').isVisible(), false);
    await page.fill('#login', ALICE.login);
    await page.fill('#password', ALICE.password);
    await page.click('#login-submit');
    await page.locator('#inbox-view').waitFor({ state: 'visible' });
    await page.locator('#badge[data-state="connected"][data-transport="websocket"]').waitFor();
    assert.match((await page.textContent('#badge')) ?? '', /Connected · WebSocket/);
    assert.equal(await page.textContent('#who'), ALICE.login);
    // The secret cookie is HttpOnly: the page's script cannot read it.
    const cookies = await context.cookies(n.url);
    assert.ok(cookies.length > 0 && cookies.every((c) => c.httpOnly), JSON.stringify(cookies));
    assert.equal(await page.evaluate(() => (globalThis as unknown as { document: { cookie: string } }).document.cookie), '');
  });

  it('shows mail delivered through Dovecot live, newest on top', async () => {
    assert.equal(await page.locator('#empty').isVisible(), true);
    for (const [i, m] of MAILS.entries()) {
      await dovecot!.deliver({ from: 'sender@example.net', to: ALICE.login, rawMessage: mail(m.from, m.subject, m.body) });
      await page.locator('#mails > li').nth(i).waitFor();
    }
    assert.equal(await page.locator('#mails > li').count(), MAILS.length);
    assert.equal(await page.locator('#empty').isVisible(), false);
    const rows = await page.$$eval('#mails > li', (lis) =>
      lis.map((li) => ({
        id: li.getAttribute('data-id'),
        from: li.querySelector('.from')?.textContent,
        address: li.querySelector('.from')?.getAttribute('title'),
        subject: li.querySelector('.subject')?.textContent,
        snippet: li.querySelector('.snippet')?.textContent,
      })),
    );
    assert.deepEqual(rows, [
      { id: '4', from: 'Sender Example', address: 'sender@example.net', subject: 'Your inbox is live', snippet: MAILS[3].body },
      { id: '3', from: 'Build Bot', address: 'ci@example.org', subject: 'main is green again', snippet: MAILS[2].body },
      { id: '2', from: 'Jürgen Müller', address: 'juergen@example.net', subject: 'Grüße aus Köln', snippet: MAILS[1].body },
      { id: '1', from: 'Priya Raman', address: 'priya@example.com', subject: 'Lunch on Thursday?', snippet: MAILS[0].body },
    ]);
    assert.equal(await page.textContent('#unread'), '4 unread');
    assert.equal(await page.title(), '(4) Inbox · tidings');
    await page.locator('#badge[data-state="connected"][data-transport="websocket"]').waitFor();

    if (process.env.TIDINGS_SCREENSHOT === '1') {
      // Wait for the "just arrived" highlight to fade, so the picture is calm.
      await page.locator('#mails > li.fresh').first().waitFor({ state: 'detached' });
      await page.mouse.move(0, 0); // no hover highlight
      await mkdir(dirname(SCREENSHOT), { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: true, animations: 'disabled' });
    }
  });

  it('signs out: back to the form, the socket closed', async () => {
    await page.click('#logout');
    await page.locator('#login-view').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#session').isVisible(), false);
    assert.equal(await page.locator('#badge').getAttribute('data-state'), 'disconnected');
    assert.equal(await page.locator('#mails > li').count(), 0);
  });

  it('logged no error in the page', () => {
    assert.deepEqual(pageErrors, []);
  });
});
