// Proves the Dovecot fixture: a real Dovecot 2.3 delivers over LMTP and PUTs to a raw capture server.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { startDovecot, type Dovecot } from '../helpers/dovecot.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/wait.js';

interface Captured {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

async function startCapture(): Promise<{ port: number; requests: Captured[]; close(): Promise<void> }> {
  const requests: Captured[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(204).end();
    });
  });
  const port = await freePort();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return {
    port,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function message(n: number): string {
  return [
    'From: =?utf-8?b?SsO8cmdlbiBNw7xsbGVy?= <juergen@example.net>',
    'To: alice@example.com',
    `Subject: Fixture mail ${n}`,
    '  folded on',
    `Message-ID: <fixture-${n}@example.net>`,
    'Content-Type: text/plain; charset=utf-8',
    '',
    `Hello, this is fixture mail ${n}.`,
    '.A line that starts with a dot.',
    '',
  ].join('\n');
}

const PATH = '/preliminary/http-notify/v1/notify';

for (const userFromMetadata of [false, true]) {
  describe(`Dovecot fixture (userFromMetadata: ${userFromMetadata})`, () => {
    let capture: Awaited<ReturnType<typeof startCapture>>;
    let dovecot: Dovecot;

    before(async () => {
      capture = await startCapture();
      dovecot = await startDovecot({
        pushUrl: `http://pushuser:s3cr%40t@127.0.0.1:${capture.port}${PATH}`,
        userFromMetadata,
        driverOptions: 'max_retries=0 timeout_msecs=1000',
        users: [
          { login: 'alice@example.com', password: 'alice-pw' },
          { login: 'bob@example.com', password: 'bob-pw' },
        ],
      });
    });

    after(async () => {
      if (dovecot) {
        const log = await dovecot.log();
        await dovecot.stop();
        assert.match(log, /push-notification/, 'the push plugin should have logged');
      }
      await capture?.close();
    });

    it('sends nothing for a user without the METADATA entry', async () => {
      await dovecot.deliver({ from: 'sender@example.net', to: 'bob@example.com', rawMessage: message(0) });
      // The LMTP 250 comes only after the push attempt, so the log already tells.
      await waitFor('the skip in the log', async () => /Skipped because not active/.test(await dovecot.log()));
      assert.equal(capture.requests.length, 0);
    });

    it('PUTs the new mail with Basic auth and the JSON body', async () => {
      await dovecot.setPushMetadata('alice@example.com', 'alice-pw', 'user=3@1');
      await dovecot.deliver({ from: 'sender@example.net', to: 'alice@example.com', rawMessage: message(1) });
      const req = await waitFor('the PUT', () => capture.requests[0], 5_000);

      assert.equal(req.method, 'PUT');
      assert.equal(req.url, PATH);
      assert.equal(req.headers['content-type'], 'application/json; charset=utf-8');
      const auth = req.headers.authorization ?? '';
      assert.match(auth, /^Basic /);
      assert.equal(Buffer.from(auth.slice('Basic '.length), 'base64').toString('utf8'), 'pushuser:s3cr@t');

      const body = JSON.parse(req.body) as Record<string, unknown>;
      assert.equal(body.user, userFromMetadata ? '3@1' : 'alice@example.com');
      assert.equal(body.event, 'messageNew');
      assert.equal(body.folder, 'INBOX');
      assert.equal(body['imap-uid'], 1);
      assert.equal(typeof body['imap-uidvalidity'], 'number');
      assert.equal(body.from, '=?utf-8?b?SsO8cmdlbiBNw7xsbGVy?= <juergen@example.net>');
      assert.equal(body.subject, 'Fixture mail 1\n  folded on');
      assert.equal(body.snippet, 'Hello, this is fixture mail 1. .A line that starts with a dot.');
      assert.equal(body.unseen, 1);
    });

    it('sends a second delivery with the next UID', async () => {
      await dovecot.deliver({ from: 'sender@example.net', to: 'alice@example.com', rawMessage: message(2) });
      const req = await waitFor('the second PUT', () => capture.requests[1], 5_000);
      const body = JSON.parse(req.body) as Record<string, unknown>;
      assert.equal(body['imap-uid'], 2);
      assert.equal(body.unseen, 2);
      assert.equal(capture.requests.length, 2);
    });

    it('a delivery by dovecot-lda is pushed too (the README\'s protocol lda block)', async () => {
      await dovecot.deliverLda({ from: 'sender@example.net', to: 'alice@example.com', rawMessage: message(4) });
      const req = await waitFor('the PUT of the LDA delivery', () => capture.requests[2], 5_000);
      const body = JSON.parse(req.body) as Record<string, unknown>;
      assert.equal(body.user, userFromMetadata ? '3@1' : 'alice@example.com');
      assert.equal(body['imap-uid'], 3);
      assert.equal(body.subject, 'Fixture mail 4\n  folded on');
      assert.equal(capture.requests.length, 3);
    });

    it('rejects a delivery to an unknown user with the server reply', async () => {
      await assert.rejects(
        dovecot.deliver({ from: 'sender@example.net', to: 'nobody@example.com', rawMessage: message(3) }),
        /LMTP RCPT TO:<nobody@example.com>: 550/,
      );
    });
  });
}
