// Mail push end to end: a real Dovecot 2.3 delivers over LMTP and PUTs to tidings' notify
// endpoint; a Socket.IO client of the user receives `ox:mail:new` with the decoded fields, exactly
// once. Plus every error answer of the endpoint, over plain HTTP.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'socket.io-client';
import { startDovecot, type Dovecot } from '../helpers/dovecot.js';
import { connectSocketIo, login, push, startNode, type TestNode } from '../helpers/node.js';
import { startSlowProxy, type SlowProxy } from '../helpers/slow-proxy.js';
import { waitFor } from '../helpers/wait.js';

const NOTIFY = '/preliminary/http-notify/v1/notify';
const CREDENTIALS = { 'tidings.notify.login': 'pushuser', 'tidings.notify.password': 's3cr@t' };
const BASIC = 'Basic ' + Buffer.from('pushuser:s3cr@t').toString('base64');
const JSON_TYPE = 'application/json; charset=utf-8';
const ALICE = { login: 'alice@example.com', password: 'alice-pw' };
const BOB = { login: 'bob@example.com', password: 'bob-pw' };

/** The Basic credentials in the URL, percent-encoded as Dovecot expects them (`@` → `%40`). */
function pushUrl(n: TestNode, host = new URL(n.url).host): string {
  return `http://pushuser:s3cr%40t@${host}${NOTIFY}`;
}

interface Seen {
  name: string;
  args: unknown[];
}

/**
 * Every event a socket receives, in order. `drain()` publishes a marker through `/api/push` and
 * returns what arrived since the previous marker: the marker travels the same path after the
 * events before it, so "exactly once" is proven without sleeping.
 */
class Feed {
  readonly events: Seen[] = [];
  #from = 0;
  #markers = 0;

  constructor(readonly socket: Socket, readonly url: string, readonly user: { user: number; context: number }) {
    // Every event's last argument is its offset (README, "Resume").
    socket.onAny((name: string, ...args: unknown[]) => {
      assert.match(String(args.at(-1)), /^e[0-9a-z]+-\d+$/);
      this.events.push({ name, args: args.slice(0, -1) });
    });
  }

  async waitForMail(id: string, timeoutMs = 10_000): Promise<void> {
    await waitFor(`ox:mail:new for uid ${id}`, () => this.events.slice(this.#from).some((e) => e.name === 'ox:mail:new' && (e.args[0] as { id?: string })?.id === id), timeoutMs);
  }

  async drain(): Promise<Seen[]> {
    const marker = `marker-${++this.#markers}`;
    const r = await push(this.url, { context: this.user.context, user: this.user.user, event: 'test:marker', data: marker });
    assert.equal(r.status, 202);
    const at = await waitFor(`the ${marker}`, () => {
      const i = this.events.findIndex((e, j) => j >= this.#from && e.name === 'test:marker' && e.args[0] === marker);
      return i >= 0 ? i + 1 : 0;
    });
    const got = this.events.slice(this.#from, at - 1);
    this.#from = at;
    return got;
  }
}

function metric(text: string, name: string): number {
  const m = new RegExp(`^${name.replace(/[{}"=]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

async function metrics(n: TestNode): Promise<string> {
  const r = await fetch(`${n.url}/metrics`);
  assert.equal(r.status, 200);
  return r.text();
}

interface Case {
  name: string;
  /** The whole message; a Buffer goes byte for byte (raw Latin-1). */
  raw: string | Buffer;
  /** RCPT TO; alice by default. */
  to?: string;
  want: { from: string | null; subject: string | null; snippet: string };
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

const CASES: Case[] = [
  {
    name: 'plain ASCII',
    raw: ['From: Sender Example <sender@example.net>', 'To: alice@example.com', 'Subject: Plain ASCII subject', 'Message-ID: <ascii@example.net>', '', 'Hello Alice,', '', 'this is a plain ASCII mail.', ''].join('\n'),
    want: { from: 'Sender Example <sender@example.net>', subject: 'Plain ASCII subject', snippet: 'Hello Alice, this is a plain ASCII mail.' },
  },
  {
    name: 'an RFC 2047 encoded-word subject and From (UTF-8, B and Q)',
    raw: [
      'From: =?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <juergen@example.net>',
      'To: alice@example.com',
      `Subject: =?utf-8?b?${b64('Grüße aus Köln ☕')}?=`,
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: 8bit',
      '',
      'Bis später, Jürgen',
      '',
    ].join('\n'),
    want: { from: 'Jürgen Müller <juergen@example.net>', subject: 'Grüße aus Köln ☕', snippet: 'Bis später, Jürgen' },
  },
  {
    name: 'a folded subject',
    raw: ['From: sender@example.net', 'To: alice@example.com', 'Subject: A rather long subject line that', ' was folded by the sender', '', 'Body.', ''].join('\n'),
    want: { from: 'sender@example.net', subject: 'A rather long subject line that was folded by the sender', snippet: 'Body.' },
  },
  {
    name: 'a folded run of encoded-words',
    raw: ['From: sender@example.net', 'To: alice@example.com', 'Subject: =?utf-8?q?Sch=C3=B6ne?=', '\t=?utf-8?q?_Gr=C3=BC=C3=9Fe?=', '', 'x', ''].join('\n'),
    want: { from: 'sender@example.net', subject: 'Schöne Grüße', snippet: 'x' },
  },
  {
    name: 'a raw Latin-1 From (byte 0xFC arrives as U+FFFD; the snippet is charset-decoded)',
    raw: Buffer.from(
      ['From: J\u00fcrgen <j@example.net>', 'To: alice@example.com', 'Subject: Raw Latin-1 header', 'MIME-Version: 1.0', 'Content-Type: text/plain; charset=iso-8859-1', 'Content-Transfer-Encoding: 8bit', '', 'Gr\u00fc\u00dfe aus M\u00fcnchen', ''].join('\r\n'),
      'latin1',
    ),
    want: { from: 'J\uFFFDrgen <j@example.net>', subject: 'Raw Latin-1 header', snippet: 'Grüße aus München' },
  },
  {
    name: 'an ISO-8859-1 Q-encoded From and subject',
    raw: ['From: =?iso-8859-1?q?J=FCrgen_M=FCller?= <j@example.net>', 'To: alice@example.com', 'Subject: =?ISO-8859-1?Q?=C4rger_mit_dem_=DCbergang?=', '', 'Hallo.', ''].join('\n'),
    want: { from: 'Jürgen Müller <j@example.net>', subject: 'Ärger mit dem Übergang', snippet: 'Hallo.' },
  },
  {
    name: 'no Subject header, to Alice+news@Example.COM',
    raw: ['From: "Doe, John" <john@example.net>', 'To: alice+news@example.com', '', 'No subject here.', ''].join('\n'),
    to: 'Alice+news@Example.COM',
    want: { from: '"Doe, John" <john@example.net>', subject: null, snippet: 'No subject here.' },
  },
];

for (const userFromMetadata of [false, true]) {
  describe(`mail push from a real Dovecot (user ${userFromMetadata ? 'from METADATA "3@1"' : 'is the login'})`, () => {
    let n: TestNode;
    let dovecot: Dovecot | undefined;
    let socket: Socket | undefined;
    let feed: Feed;
    let uidValidity: number | undefined;

    before(async () => {
      n = await startNode({ properties: CREDENTIALS });
      dovecot = await startDovecot({ pushUrl: pushUrl(n), userFromMetadata, users: [ALICE, BOB] });
      await dovecot.setPushMetadata(ALICE.login, ALICE.password, userFromMetadata ? 'user=3@1' : 'user=alice@example.com');
      const l = await login(n.url, ALICE.login, ALICE.password);
      socket = await connectSocketIo(n.url, l, { subPath: '/appsuite', transports: ['websocket'] });
      feed = new Feed(socket, n.url, l);
    });

    after(async () => {
      socket?.close();
      const log = dovecot ? await dovecot.log() : '';
      await dovecot?.stop();
      await n?.stop();
      // Every notification was answered 2xx at once: Dovecot logged no push error.
      assert.doesNotMatch(log, /push-notification-ox: Error/);
    });

    for (const [i, c] of CASES.entries()) {
      const uid = String(i + 1);
      it(`${c.name}: one ox:mail:new with the decoded fields`, async () => {
        await dovecot!.deliver({ from: 'sender@example.net', to: c.to ?? ALICE.login, rawMessage: c.raw });
        await feed.waitForMail(uid);
        const got = await feed.drain();
        assert.equal(got.length, 1, `exactly one event, got ${JSON.stringify(got)}`);
        assert.equal(got[0].name, 'ox:mail:new');
        assert.equal(got[0].args.length, 1);
        const ev = got[0].args[0] as Record<string, unknown>;
        assert.equal(typeof ev.uidValidity, 'number');
        assert.ok((ev.uidValidity as number) > 0);
        uidValidity ??= ev.uidValidity as number;
        assert.deepEqual(ev, { folder: 'INBOX', id: uid, uidValidity, from: c.want.from, subject: c.want.subject, snippet: c.want.snippet, unread: i + 1 });
      });
    }

    it('sends nothing for a user without the METADATA entry, and nothing to another user', async () => {
      await dovecot!.deliver({ from: 'sender@example.net', to: BOB.login, rawMessage: 'Subject: for bob\n\nhi\n' });
      assert.deepEqual(await feed.drain(), []);
    });

    it('counts the notifications it received', async () => {
      const text = await metrics(n);
      assert.equal(metric(text, 'tidings_notify_received_total{event="messageNew"}'), CASES.length);
      assert.equal(metric(text, 'tidings_events_published_total{source="dovecot"}'), CASES.length);
    });
  });
}

describe('mail push when tidings answers slower than Dovecot waits (Dovecot retries)', () => {
  let n: TestNode;
  let proxy: SlowProxy | undefined;
  let dovecot: Dovecot | undefined;
  let socket: Socket | undefined;

  before(async () => {
    n = await startNode({ properties: CREDENTIALS });
    // Between Dovecot and tidings: every answer is held 800 ms, past Dovecot's 500 ms timeout.
    proxy = await startSlowProxy(Number(new URL(n.url).port), 800);
    dovecot = await startDovecot({ pushUrl: pushUrl(n, proxy.host), driverOptions: 'timeout_msecs=500 max_retries=1', users: [ALICE] });
    await dovecot.setPushMetadata(ALICE.login, ALICE.password, 'user=alice@example.com');
  });

  after(async () => {
    socket?.close();
    await dovecot?.stop();
    await proxy?.stop();
    await n?.stop();
  });

  it('delivers the mail exactly once, and Dovecot logged its retry', async () => {
    const l = await login(n.url, ALICE.login, ALICE.password);
    socket = await connectSocketIo(n.url, l, { transports: ['websocket'] });
    const feed = new Feed(socket, n.url, l);
    await dovecot!.deliver({ from: 'sender@example.net', to: ALICE.login, rawMessage: 'From: Slow <slow@example.net>\nSubject: retried\n\nOnce only.\n' });
    await feed.waitForMail('1');
    // Both attempts reached tidings; the second one was dropped as a repeat of the first.
    await waitFor('the retry to be seen as a duplicate', () => n.node.metrics.duplicates.get().then((m) => m.values[0]?.value === 1));
    const got = await feed.drain();
    assert.equal(got.length, 1, `exactly one event, got ${JSON.stringify(got)}`);
    assert.equal((got[0].args[0] as { subject: string }).subject, 'retried');
    const text = await metrics(n);
    assert.equal(metric(text, 'tidings_notify_received_total{event="messageNew"}'), 2);
    assert.equal(metric(text, 'tidings_events_published_total{source="dovecot"}'), 1);
    const log = await dovecot!.log();
    assert.match(log, /push-notification-ox: Error when sending notification: .*Request timed out.*1 times retried/);
  });
});

describe('notify endpoint over plain HTTP', () => {
  let n: TestNode;
  let off: TestNode;
  let socket: Socket | undefined;
  let feed: Feed;

  const body = (o: Record<string, unknown> = {}): Record<string, unknown> => ({
    user: '3@1',
    event: 'messageNew',
    folder: 'INBOX',
    'imap-uidvalidity': 1795312980,
    'imap-uid': 7,
    from: '=?utf-8?b?SsO8cmdlbiBNw7xsbGVy?= <juergen@example.net>',
    subject: 'Hello\n world',
    snippet: 'Hi there',
    unseen: 4,
    ...o,
  });
  const put = (b: unknown, opts: { auth?: string | null; type?: string; raw?: string; url?: string } = {}): Promise<Response> => {
    const headers: Record<string, string> = { 'content-type': opts.type ?? JSON_TYPE };
    const auth = opts.auth === undefined ? BASIC : opts.auth;
    if (auth !== null) headers.authorization = auth;
    return fetch(`${opts.url ?? n.url}${NOTIFY}`, { method: 'PUT', headers, body: opts.raw ?? JSON.stringify(b) });
  };
  const errorOf = async (r: Response, status: number): Promise<string> => {
    assert.equal(r.status, status);
    assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
    const j = (await r.json()) as { error: { code: string; message: string } };
    assert.equal(typeof j.error.message, 'string');
    return j.error.code;
  };

  before(async () => {
    n = await startNode({ properties: CREDENTIALS });
    off = await startNode();
    const l = await login(n.url, ALICE.login, ALICE.password);
    socket = await connectSocketIo(n.url, l, { transports: ['websocket'] });
    feed = new Feed(socket, n.url, l);
  });

  after(async () => {
    socket?.close();
    await n?.stop();
    await off?.stop();
  });

  it('answers 202 and pushes the decoded event; a repeat of the same (user, uidvalidity, uid) is dropped', async () => {
    assert.equal((await put(body())).status, 202);
    assert.equal((await put(body())).status, 202);
    await feed.waitForMail('7');
    await waitFor('the repeat to be deduped', () => n.node.metrics.duplicates.get().then((m) => m.values[0]?.value === 1));
    const got = await feed.drain();
    assert.deepEqual(got, [
      { name: 'ox:mail:new', args: [{ folder: 'INBOX', id: '7', uidValidity: 1795312980, from: 'Jürgen Müller <juergen@example.net>', subject: 'Hello world', snippet: 'Hi there', unread: 4 }] },
    ]);
  });

  it('takes a login as the user, lower-cased and without +detail, and a new uidvalidity is a new mail', async () => {
    assert.equal((await put(body({ user: 'Alice+News@Example.COM', 'imap-uid': 8 }))).status, 202);
    assert.equal((await put(body({ user: 'alice@example.com', 'imap-uidvalidity': 1, 'imap-uid': 8 }))).status, 202);
    await waitFor('both', () => feed.events.filter((e) => e.name === 'ox:mail:new').length >= 3);
    const got = await feed.drain();
    assert.deepEqual(got.map((e) => [(e.args[0] as { id: string }).id, (e.args[0] as { uidValidity: number }).uidValidity]), [['8', 1795312980], ['8', 1]]);
  });

  it('401 TIDINGS_NOTIFY_UNAUTHORIZED with WWW-Authenticate for missing or wrong credentials', async () => {
    const wrong = (s: string) => 'Basic ' + Buffer.from(s).toString('base64');
    for (const auth of [null, wrong('pushuser:wrong'), wrong('other:s3cr@t'), wrong('pushuser:s3cr@t '), wrong('pushuser'), 'Bearer s3cr@t', 'Basic !!!']) {
      const r = await put(body(), { auth });
      assert.equal(r.headers.get('www-authenticate'), 'Basic realm="tidings"', String(auth));
      assert.equal(await errorOf(r, 401), 'TIDINGS_NOTIFY_UNAUTHORIZED', String(auth));
    }
  });

  it('403 TIDINGS_NOTIFY_DISABLED when no credentials are configured, whatever is presented', async () => {
    for (const auth of [null, BASIC, 'Basic ' + Buffer.from(':').toString('base64')]) {
      assert.equal(await errorOf(await put(body(), { auth, url: off.url }), 403), 'TIDINGS_NOTIFY_DISABLED');
    }
  });

  it('404 TIDINGS_UNKNOWN_USER for a user the directory does not know, counted in /metrics', async () => {
    const before = metric(await metrics(n), 'tidings_notify_unknown_user_total');
    for (const user of ['nobody@example.com', '99@1', '3@99', 'ox-alice', '3@1@1']) {
      assert.equal(await errorOf(await put(body({ user })), 404), 'TIDINGS_UNKNOWN_USER', user);
    }
    assert.equal(metric(await metrics(n), 'tidings_notify_unknown_user_total'), before + 5);
  });

  it('400 with a JSON error for a body that is not JSON, has wrong types, or misses a field; nothing is pushed', async () => {
    assert.equal(await errorOf(await put(null, { raw: '{"user":"3@1",' }), 400), 'TIDINGS_BAD_JSON');
    assert.equal(await errorOf(await put(null, { raw: '' }), 400), 'TIDINGS_BAD_JSON');
    const { user: _u, ...noUser } = body();
    const { folder: _f, ...noFolder } = body();
    const { 'imap-uid': _i, ...noUid } = body();
    const bad: [string, unknown][] = [
      ['an array', [body()]],
      ['a string', 'messageNew'],
      ['null', null],
      ['user is a number', body({ user: 3 })],
      ['user is empty', body({ user: '' })],
      ['event is missing', body({ event: undefined })],
      ['imap-uid is a string', body({ 'imap-uid': '7' })],
      ['imap-uid is negative', body({ 'imap-uid': -1 })],
      ['imap-uid is a fraction', body({ 'imap-uid': 1.5 })],
      ['imap-uidvalidity is too big', body({ 'imap-uidvalidity': 2 ** 32 })],
      ['folder is a number', body({ folder: 1 })],
      ['subject is an object', body({ subject: { a: 1 } })],
      ['unseen is a string', body({ unseen: '4' })],
      ['user is missing', noUser],
      ['folder is missing', noFolder],
      ['imap-uid is missing', noUid],
    ];
    for (const [what, b] of bad) {
      const code = await errorOf(await put(b), 400);
      assert.equal(code, 'TIDINGS_VALIDATION', what);
    }
    assert.deepEqual(await feed.drain(), []);
  });

  it('413 for a body over 64 KiB, 415 for a body that is not declared JSON', async () => {
    assert.equal(await errorOf(await put(body({ snippet: 'x'.repeat(65_536) })), 413), 'TIDINGS_BODY_TOO_LARGE');
    // 64 KiB exactly is still fine.
    const pad = 65_536 - JSON.stringify(body({ snippet: '', 'imap-uid': 9 })).length;
    const exact = JSON.stringify(body({ snippet: 'y'.repeat(pad), 'imap-uid': 9 }));
    assert.equal(Buffer.byteLength(exact), 65_536);
    assert.equal((await put(null, { raw: exact })).status, 202);
    assert.equal(await errorOf(await put(body(), { type: 'text/plain' }), 415), 'TIDINGS_UNSUPPORTED_MEDIA_TYPE');
    assert.equal(await errorOf(await put(null, { raw: 'user=3@1', type: 'application/x-www-form-urlencoded' }), 415), 'TIDINGS_UNSUPPORTED_MEDIA_TYPE');
    await feed.waitForMail('9');
    const got = await feed.drain();
    assert.deepEqual(got.map((e) => (e.args[0] as { id: string }).id), ['9']);
  });

  it('2xx for an event other than messageNew, ignored and counted by event', async () => {
    const r = await put({ user: '3@1', event: 'messageRead', folder: 'INBOX', 'imap-uid': 7 });
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), { ignored: true, event: 'messageRead' });
    assert.equal((await put({ user: 'somebody-unknown', event: 'FlagsSet' })).status, 200);
    assert.deepEqual(await feed.drain(), []);
    const text = await metrics(n);
    assert.equal(metric(text, 'tidings_notify_received_total{event="messageRead"}'), 1);
    assert.equal(metric(text, 'tidings_notify_received_total{event="FlagsSet"}'), 1);
  });

  it('answers only PUT', async () => {
    const r = await fetch(`${n.url}${NOTIFY}`, { method: 'POST', headers: { 'content-type': JSON_TYPE, authorization: BASIC }, body: JSON.stringify(body()) });
    assert.equal(await errorOf(r, 404), 'TIDINGS_NOT_FOUND');
  });
});
