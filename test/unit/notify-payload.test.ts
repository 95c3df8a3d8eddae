import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TidingsError } from '../../src/errors.js';
import { decodeHeader, idempotencyKey, parseNotifyBody, toMailEvent } from '../../src/mail/notify-payload.js';

// A body exactly as Dovecot 2.3.19.1 sent it.
const observed = {
  user: '3@1',
  event: 'messageNew',
  folder: 'INBOX',
  'imap-uidvalidity': 1795312980,
  'imap-uid': 7,
  from: '=?utf-8?b?SsO8cmdlbiBNw7xsbGVy?= <juergen@example.net>',
  subject: 'Hello\n world',
  snippet: 'Hello, this is test mail 1.',
  unseen: 4,
};

describe('decodeHeader', () => {
  const cases: [string, string, string][] = [
    ['plain ASCII', 'Sender Example <sender@example.net>', 'Sender Example <sender@example.net>'],
    ['quotes are kept', '"Doe, John" <john@example.net>', '"Doe, John" <john@example.net>'],
    ['UTF-8 B word', '=?utf-8?b?SsO8cmdlbiBNw7xsbGVy?= <juergen@example.net>', 'Jürgen Müller <juergen@example.net>'],
    ['Q word with underscores', '=?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=', 'Grüße aus Köln'],
    ['ISO-8859-1 Q word', '=?iso-8859-1?q?J=FCrgen_M=FCller?= <j@example.net>', 'Jürgen Müller <j@example.net>'],
    ['ISO-8859-15 B word (euro sign)', '=?ISO-8859-15?B?pA==?= 5', '€ 5'],
    ['ISO-8859-2 Q word', '=?iso-8859-2?q?=A3=F3d=BC?=', 'Łódź'],
    ['Windows-1252 Q word', '=?windows-1252?q?=80_10_=96_cheap?=', '€ 10 – cheap'],
    ['Windows-1251 B word', '=?windows-1251?B?z/Do4uXy?=', 'Привет'],
    ['two adjacent words: the space between them is dropped', '=?utf-8?q?Hello?= =?utf-8?q?World?=', 'HelloWorld'],
    ['adjacent words in different charsets', '=?iso-8859-1?q?J=FC?= =?utf-8?b?cmdlbg==?=', 'Jürgen'],
    ['a UTF-8 character split across two B words', '=?UTF-8?B?8J+Y?= =?UTF-8?B?gA==?=', '😀'],
    ['word between plain text keeps the spaces', 'Re: =?utf-8?q?caf=C3=A9?= today', 'Re: café today'],
    ['folded plain subject', 'Hello\n world', 'Hello world'],
    ['folded with a tab and CRLF', 'Hello\r\n\tworld', 'Hello world'],
    ['folded encoded subject', '=?utf-8?q?Sch=C3=B6ne?=\n =?utf-8?q?_Gr=C3=BC=C3=9Fe?=', 'Schöne Grüße'],
    ['folded between encoded word and text', '=?utf-8?b?SsO8cmdlbg==?=\n <j@example.net>', 'Jürgen <j@example.net>'],
    ['Latin-1 raw byte that arrived as U+FFFD', 'J\uFFFDrgen <j@example.net>', 'J\uFFFDrgen <j@example.net>'],
    ['invalid charset is left as it was', '=?x-no-such-charset?q?abc?=', '=?x-no-such-charset?q?abc?='],
    ['invalid charset next to a good word keeps its space', '=?x-bogus?q?abc?= =?utf-8?q?d=C3=A9f?=', '=?x-bogus?q?abc?= déf'],
    ['broken base64 is left as it was', '=?utf-8?b?!!!?=', '=?utf-8?b?!!!?='],
    ['empty string', '', ''],
  ];
  for (const [name, raw, want] of cases) {
    it(name, () => assert.equal(decodeHeader(raw), want));
  }
});

describe('parseNotifyBody', () => {
  it('accepts the body Dovecot sends', () => {
    assert.deepEqual(parseNotifyBody(observed), {
      user: '3@1',
      event: 'messageNew',
      folder: 'INBOX',
      uid: 7,
      uidValidity: 1795312980,
      from: observed.from,
      subject: 'Hello\n world',
      snippet: 'Hello, this is test mail 1.',
      unseen: 4,
    });
  });

  it('treats a missing imap-uidvalidity as 0 and leaves optional fields out', () => {
    const b = parseNotifyBody({ user: 'alice@example.com', event: 'messageNew', folder: 'INBOX', 'imap-uid': 0 });
    assert.deepEqual(b, { user: 'alice@example.com', event: 'messageNew', folder: 'INBOX', uid: 0, uidValidity: 0 });
  });

  it('accepts the uint32 maximum', () => {
    const b = parseNotifyBody({ ...observed, 'imap-uid': 4294967295, 'imap-uidvalidity': 4294967295 });
    assert.equal(b.uid, 4294967295);
    assert.equal(b.uidValidity, 4294967295);
  });

  it('ignores unknown fields', () => {
    assert.equal(parseNotifyBody({ ...observed, extra: [1] }).uid, 7);
  });

  it('does not require folder and imap-uid for other events', () => {
    const b = parseNotifyBody({ user: 'u', event: 'messageRead' });
    assert.equal(b.event, 'messageRead');
    assert.equal(b.folder, '');
    assert.equal(b.uid, 0);
  });

  const { folder: _f, ...noFolder } = observed;
  const { 'imap-uid': _u, ...noUid } = observed;
  const { user: _user, ...noUser } = observed;
  const { event: _e, ...noEvent } = observed;
  const failures: [string, unknown, string][] = [
    ['null', null, 'body'],
    ['an array', [observed], 'body'],
    ['a string', 'user=3@1', 'body'],
    ['a number', 42, 'body'],
    ['missing user', noUser, 'user'],
    ['empty user', { ...observed, user: '' }, 'user'],
    ['numeric user', { ...observed, user: 3 }, 'user'],
    ['missing event', noEvent, 'event'],
    ['non-string event', { ...observed, event: 1 }, 'event'],
    ['missing folder', noFolder, 'folder'],
    ['non-string folder', { ...observed, folder: null }, 'folder'],
    ['missing imap-uid', noUid, 'imap-uid'],
    ['string imap-uid', { ...observed, 'imap-uid': '7' }, 'imap-uid'],
    ['negative imap-uid', { ...observed, 'imap-uid': -1 }, 'imap-uid'],
    ['fractional imap-uid', { ...observed, 'imap-uid': 1.5 }, 'imap-uid'],
    ['imap-uid above uint32', { ...observed, 'imap-uid': 4294967296 }, 'imap-uid'],
    ['string imap-uidvalidity', { ...observed, 'imap-uidvalidity': '1795312980' }, 'imap-uidvalidity'],
    ['negative imap-uidvalidity', { ...observed, 'imap-uidvalidity': -5 }, 'imap-uidvalidity'],
    ['imap-uidvalidity above uint32', { ...observed, 'imap-uidvalidity': 2 ** 32 }, 'imap-uidvalidity'],
    ['non-string from', { ...observed, from: { name: 'x' } }, 'from'],
    ['non-string subject', { ...observed, subject: 5 }, 'subject'],
    ['non-string snippet', { ...observed, snippet: null }, 'snippet'],
    ['string unseen', { ...observed, unseen: '4' }, 'unseen'],
    ['negative unseen', { ...observed, unseen: -1 }, 'unseen'],
    ['fractional unseen', { ...observed, unseen: 0.5 }, 'unseen'],
  ];
  for (const [name, body, field] of failures) {
    it(`rejects ${name}`, () => {
      assert.throws(
        () => parseNotifyBody(body),
        (e: unknown) => {
          assert.ok(e instanceof TidingsError);
          assert.equal(e.code, 'TIDINGS_VALIDATION');
          assert.equal(e.status, 400);
          assert.deepEqual(e.details, { field });
          assert.match(e.message, new RegExp(`'${field}' must be`));
          return true;
        },
      );
    });
  }
});

describe('toMailEvent', () => {
  it('maps and decodes the observed body', () => {
    assert.deepEqual(toMailEvent(parseNotifyBody(observed)), {
      folder: 'INBOX',
      id: '7',
      uidValidity: 1795312980,
      from: 'Jürgen Müller <juergen@example.net>',
      subject: 'Hello world',
      snippet: 'Hello, this is test mail 1.',
      unread: 4,
    });
  });

  it('gives null from/subject/unread and an empty snippet when they are missing', () => {
    const b = parseNotifyBody({ user: 'u', event: 'messageNew', folder: 'INBOX', 'imap-uid': 12, 'imap-uidvalidity': 3 });
    assert.deepEqual(toMailEvent(b), { folder: 'INBOX', id: '12', uidValidity: 3, from: null, subject: null, snippet: '', unread: null });
  });

  it('keeps an empty header as an empty string', () => {
    const e = toMailEvent(parseNotifyBody({ ...observed, subject: '' }));
    assert.equal(e.subject, '');
  });
});

describe('idempotencyKey', () => {
  it('is mail:<userKey>:<uidValidity>:<uid>', () => {
    assert.equal(idempotencyKey('3@1', parseNotifyBody(observed)), 'mail:3@1:1795312980:7');
  });

  it('uses 0 for a missing uidvalidity', () => {
    const b = parseNotifyBody({ user: 'u', event: 'messageNew', folder: 'INBOX', 'imap-uid': 9 });
    assert.equal(idempotencyKey('5@2', b), 'mail:5@2:0:9');
  });
});
