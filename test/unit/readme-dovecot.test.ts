/**
 * Issue 14 item 4: the README's Dovecot section is complete, and its dovecot.conf block is what the
 * suite's Dovecot runs with (test/helpers/dovecot.ts embeds it; mail-push.test.ts delivers through it).
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readmeBlocks } from '../helpers/readme.js';
import { readmeDovecotBlock } from '../helpers/dovecot.js';

it('the dovecot.conf block has the METADATA settings, LMTP and LDA, and a URL with the password encoded and % doubled', () => {
  const conf = readmeDovecotBlock();
  assert.match(conf, /^imap_metadata = yes$/m);
  assert.match(conf, /^mail_attribute_dict = \S+$/m);
  assert.match(conf, /^protocol lmtp \{\n {2}mail_plugins = \$mail_plugins notify push_notification\n\}$/m);
  assert.match(conf, /^protocol lda \{\n {2}mail_plugins = \$mail_plugins notify push_notification\n\}$/m);
  const url = /push_notification_driver = ox:url=(\S+)/.exec(conf)![1];
  assert.equal(url.replaceAll('%%', '%'), `http://pushuser:${encodeURIComponent('s3cr@t')}@127.0.0.1:8009/preliminary/http-notify/v1/notify`);
});

it('shows user_from_metadata and the SETMETADATA that switches push on', () => {
  const all = readmeBlocks('Mail push from Dovecot').map((b) => b.text).join('\n');
  assert.match(all, /push_notification_driver = ox:url=\S+ user_from_metadata$/m);
});
