/** Issue 14 item 5: the remote buffer reports coalesced events, dropped copies and each batch's age. */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { RemoteBuffer } from '../../src/delivery/remote-buffer.js';
import { waitFor } from '../helpers/wait.js';

const offer = (user: string, body: string, targets = ['b']) => ({ user, pathFilter: null, targets, item: { id: `1-${body}`, body: `{"name":"${body}"}`, sourceToken: null } });

it('counts coalesced offers, observes the age of each sent batch from its oldest event, and counts dropped copies', async () => {
  let now = 1000;
  const seen = { coalesced: 0, dropped: 0, flushed: [] as number[] };
  let fail = false;
  const buf = new RemoteBuffer({
    // delayDuration 0: everything offered in one turn goes out in one batch on the next.
    timings: () => ({ delayDuration: 0, maxDelayDuration: 0, timerFrequency: 10 }),
    send: async () => {
      now += 250;
      if (fail) throw new Error('unreachable');
    },
    now: () => now,
    maxPending: () => 2,
    observe: { coalesced: () => seen.coalesced++, dropped: (n) => (seen.dropped += n), flushed: (ms) => seen.flushed.push(ms) },
  });
  buf.offer(offer('3@1', 'a'));
  now += 5;
  buf.offer(offer('3@1', 'b')); // joins a's element
  buf.offer(offer('3@1', 'b')); // identical: collapsed, still a coalesced offer
  buf.offer(offer('4@1', 'c'));
  await waitFor('the batch to be sent', () => seen.flushed.length === 1);
  assert.equal(seen.coalesced, 2);
  // Oldest event buffered at 1000, the send completed at 1255.
  assert.deepEqual(seen.flushed, [255]);

  fail = true;
  buf.offer(offer('5@1', 'd'));
  buf.offer(offer('6@1', 'e'));
  buf.offer(offer('7@1', 'f'));
  await waitFor('the overflow to be dropped', () => seen.dropped === 1);
  assert.equal(buf.stats().dropped, 1);
  buf.stop();
});
