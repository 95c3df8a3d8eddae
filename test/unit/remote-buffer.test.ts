import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { RemoteBuffer, type RemoteBufferTimings } from '../../src/delivery/remote-buffer.js';
import type { RemoteBatchItem } from '../../src/ports/cluster-bus.js';
import { withId } from '../../src/delivery/wire.js';

// Only the timer APIs are faked; time is an injected clock advanced 1 ms per mock tick, because
// Node 20's mocked Date reads the end time of a multi-ms tick() inside every callback it runs.

interface Call {
  at: number;
  node: string;
  items: RemoteBatchItem[];
}

let clock = 0;
let sendsThisMs = false;
/** Interval handles created and not yet cleared; `unrefd` those on which unref() was called. */
let active: Set<unknown>;
let unrefd: Set<unknown>;
let scheduled = 0;

beforeEach(() => {
  clock = 0;
  scheduled = 0;
  active = new Set();
  unrefd = new Set();
  mock.timers.enable({ apis: ['setTimeout', 'setInterval'] });
  // Count the module's timers: it calls the global setInterval/clearInterval at call time.
  const mockedSet = globalThis.setInterval;
  const mockedClear = globalThis.clearInterval;
  mock.method(globalThis, 'setInterval', (fn: () => void, ms: number) => {
    scheduled++;
    const h = mockedSet(fn, ms);
    active.add(h);
    const unref = h.unref.bind(h);
    h.unref = () => (unrefd.add(h), unref());
    return h;
  });
  mock.method(globalThis, 'clearInterval', (h: ReturnType<typeof setInterval>) => {
    active.delete(h);
    mockedClear(h);
  });
});

afterEach(() => {
  mock.restoreAll();
  mock.timers.reset();
});

/** Advances time 1 ms at a time; lets send promises settle (one real setImmediate) after any send. */
async function advance(ms: number): Promise<void> {
  for (let i = 0; i < ms; i++) {
    clock++;
    sendsThisMs = false;
    mock.timers.tick(1);
    if (sendsThisMs) await settle();
  }
}

async function advanceTo(t: number): Promise<void> {
  assert.ok(t >= clock, `advanceTo(${t}) is in the past (now ${clock})`);
  await advance(t - clock);
}

function settle(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

function harness(init: Partial<RemoteBufferTimings> & { maxPending?: number } = {}) {
  const timings: { -readonly [K in keyof RemoteBufferTimings]: RemoteBufferTimings[K] } = {
    delayDuration: init.delayDuration ?? 1000,
    maxDelayDuration: init.maxDelayDuration ?? 3000,
    timerFrequency: init.timerFrequency ?? 500,
  };
  const state = {
    maxPending: init.maxPending ?? 10_000,
    /** Every send rejects while set; `failNodes` makes only those nodes reject. */
    failing: false,
    failNodes: new Set<string>(),
    /** While set, sends neither resolve nor reject until settled through `deferred`. */
    hang: false,
  };
  const calls: Call[] = [];
  const deferred: { node: string; resolve: () => void; reject: (e: Error) => void }[] = [];
  const warnings: string[] = [];
  const buf = new RemoteBuffer({
    timings: () => ({ ...timings }),
    maxPending: () => state.maxPending,
    now: () => clock,
    log: { warn: (_obj, msg) => void warnings.push(msg) },
    send: (node, items) => {
      sendsThisMs = true;
      calls.push({ at: clock, node, items });
      if (state.hang) return new Promise<void>((resolve, reject) => void deferred.push({ node, resolve, reject }));
      return state.failing || state.failNodes.has(node) ? Promise.reject(new Error('redis unreachable')) : Promise.resolve();
    },
  });
  let n = 0;
  const offer = (user: string, pathFilter: string | null, targets: string[], name: string, sourceToken: string | null = null, id = `m${++n}`) =>
    buf.offer({ user, pathFilter, targets, item: { id, body: JSON.stringify({ name, args: [], namespace: '/' }), sourceToken } });
  return { buf, timings, state, calls, deferred, warnings, offer };
}

/** Event names of a batch item, in payload order. */
function names(item: RemoteBatchItem): string[] {
  return item.payloads.map((p) => (JSON.parse(p) as { name: string }).name);
}

describe('withId', () => {
  it('appends the id to the body without changing the rest, and handles an empty or padded object', () => {
    assert.equal(withId('a"1', '{"name":"x","args":[1]}'), '{"name":"x","args":[1],"id":"a\\"1"}');
    assert.deepEqual(JSON.parse(withId('i', '{"name":"x","args":[1]}')), { id: 'i', name: 'x', args: [1] });
    assert.equal(withId('i', '{}'), '{"id":"i"}');
    assert.equal(withId('i', '{ }'), '{"id":"i"}');
    assert.deepEqual(JSON.parse(withId('i', ' {"name":"x"} ')), { id: 'i', name: 'x' });
  });
});

describe('RemoteBuffer', () => {
  it('coalesces per (user, pathFilter), null filters together, and keeps different users and filters apart', async () => {
    const { calls, offer } = harness();
    offer('1@1', null, ['n1'], 'a');
    offer('1@1', null, ['n1'], 'b');
    offer('1@1', '/x', ['n1'], 'c');
    offer('1@1', '', ['n1'], 'd'); // '' is a filter, not "no filter"
    offer('2@1', null, ['n1'], 'e');
    offer('1@2', null, ['n1'], 'f'); // same user id, other context
    offer('1@1', '/x', ['n1'], 'g');
    await advanceTo(1000);
    assert.equal(calls.length, 1);
    const items = calls[0].items;
    assert.deepEqual(
      items.map((i) => [i.user, i.pathFilter, names(i)]),
      [
        ['1@1', null, ['a', 'b']],
        ['1@1', '/x', ['c', 'g']],
        ['1@1', '', ['d']],
        ['2@1', null, ['e']],
        ['1@2', null, ['f']],
      ],
    );
  });

  it('makes an element due delayDuration after its first offer, sent on the first tick at or after that', async () => {
    const { calls, offer } = harness(); // delay 1000, tick 500
    offer('1@1', null, ['n1'], 'a'); // t=0 → due 1000
    await advanceTo(100);
    offer('2@1', null, ['n1'], 'b'); // t=100 → due 1100
    await advanceTo(999);
    assert.equal(calls.length, 0);
    await advanceTo(1000);
    assert.deepEqual(calls.map((c) => [c.at, c.items.map((i) => i.user)]), [[1000, ['1@1']]]);
    await advanceTo(1499);
    assert.equal(calls.length, 1);
    await advanceTo(1500);
    assert.deepEqual(calls.map((c) => [c.at, c.items.map((i) => i.user)]), [[1000, ['1@1']], [1500, ['2@1']]]);
  });

  it('re-arms the due time on every further offer, a collapsed duplicate included', async () => {
    const { calls, offer } = harness();
    offer('1@1', null, ['n1'], 'a', null, 'id1'); // due 1000
    await advanceTo(800);
    offer('1@1', null, ['n1'], 'a', null, 'id2'); // duplicate, still re-arms → due 1800
    await advanceTo(1999);
    assert.equal(calls.length, 0);
    await advanceTo(2000);
    assert.equal(calls.length, 1);
    assert.deepEqual(calls[0].items[0].payloads.map((p) => (JSON.parse(p) as { id: string }).id), ['id1']);
  });

  it('caps a continuous stream at first + maxDelayDuration, flushed on the next tick', async () => {
    const { calls, offer } = harness({ delayDuration: 1000, maxDelayDuration: 3000, timerFrequency: 400 });
    // One message every delay/2 from t=0 on: without the cap it would never become due.
    for (let t = 0; t <= 4000; t += 500) {
      await advanceTo(t);
      offer('1@1', null, ['n1'], `e${t}`);
    }
    // Cap at 3000, ticks at ..., 2800, 3200: flushed at 3200 with everything offered up to then.
    assert.equal(calls.length, 1);
    assert.equal(calls[0].at, 3200);
    assert.deepEqual(names(calls[0].items[0]), ['e0', 'e500', 'e1000', 'e1500', 'e2000', 'e2500', 'e3000']);
    // The buffer emptied at 3200, so the timer stopped; the offer at 3500 starts a new element
    // (cap 6500) and a new timer (ticks at 3900, …, 6300, 6700).
    for (let t = 4500; t <= 7000; t += 500) {
      await advanceTo(t);
      offer('1@1', null, ['n1'], `e${t}`);
    }
    assert.equal(calls.length, 2);
    assert.equal(calls[1].at, 6700);
    assert.deepEqual(names(calls[1].items[0]), ['e3500', 'e4000', 'e4500', 'e5000', 'e5500', 'e6000', 'e6500']);
  });

  it('collapses identical (body, sourceToken) into the first, but not the same body with another sourceToken', async () => {
    const { calls, offer } = harness();
    offer('1@1', null, ['n1'], 'a', 'tok1', 'first');
    offer('1@1', null, ['n1'], 'a', 'tok1', 'second'); // collapses
    offer('1@1', null, ['n1'], 'a', 'tok2', 'third'); // other token: kept
    offer('1@1', null, ['n1'], 'a', null, 'fourth'); // null token is a token value of its own: kept
    offer('1@1', null, ['n1'], 'a', null, 'fifth'); // collapses with fourth
    offer('1@1', null, ['n1'], 'b', 'tok1', 'sixth'); // other body: kept
    await advanceTo(1000);
    const item = calls[0].items[0];
    assert.deepEqual(item.payloads.map((p) => (JSON.parse(p) as { id: string }).id), ['first', 'third', 'fourth', 'sixth']);
    assert.deepEqual(item.sourceTokens, ['tok1', 'tok2', null, 'tok1']);
  });

  it('keeps payloads in publish order (oldest first) with sourceTokens aligned', async () => {
    const { calls, offer } = harness();
    for (let i = 1; i <= 5; i++) offer('1@1', '/inbox', ['n1'], `e${i}`, `t${i}`);
    await advanceTo(1000);
    const item = calls[0].items[0];
    assert.deepEqual(names(item), ['e1', 'e2', 'e3', 'e4', 'e5']);
    assert.deepEqual(item.sourceTokens, ['t1', 't2', 't3', 't4', 't5']);
    assert.deepEqual(JSON.parse(item.payloads[0]), { id: 'm1', name: 'e1', args: [], namespace: '/' });
  });

  it('sends once per target node per tick with every due element for it, in first-offer order; others get nothing', async () => {
    const { calls, offer } = harness();
    offer('B@1', null, ['n2'], 'b1');
    offer('A@1', null, ['n1', 'n2'], 'a1');
    offer('C@1', null, ['n3'], 'c1');
    offer('B@1', null, ['n2'], 'b2'); // a later offer does not move B behind A
    await advanceTo(1000);
    const byNode = new Map(calls.map((c) => [c.node, c.items.map((i) => i.user)]));
    assert.equal(calls.length, 3);
    assert.deepEqual(byNode.get('n1'), ['A@1']);
    assert.deepEqual(byNode.get('n2'), ['B@1', 'A@1']);
    assert.deepEqual(byNode.get('n3'), ['C@1']);
    assert.equal(byNode.has('n4'), false);
  });

  it('sends only the due elements on a tick and keeps the others', async () => {
    const { calls, offer } = harness();
    offer('1@1', null, ['n1'], 'a'); // due 1000
    await advanceTo(600);
    offer('2@1', null, ['n1'], 'b'); // due 1600
    await advanceTo(1000);
    assert.deepEqual(calls.map((c) => c.items.map((i) => i.user)), [['1@1']]);
    await advanceTo(2000);
    assert.deepEqual(calls.map((c) => [c.at, c.items.map((i) => i.user)]), [[1000, ['1@1']], [2000, ['2@1']]]);
  });

  it('sends an element to the union of its offers’ targets', async () => {
    const { calls, offer } = harness();
    offer('1@1', null, ['n1'], 'a');
    offer('1@1', null, ['n2'], 'b');
    offer('1@1', null, ['n1', 'n3'], 'c');
    await advanceTo(1000);
    assert.deepEqual(calls.map((c) => c.node).sort(), ['n1', 'n2', 'n3']);
    for (const c of calls) assert.deepEqual(names(c.items[0]), ['a', 'b', 'c']);
  });

  it('with delayDuration=0 sends on the next turn of the event loop, everything offered in this turn in one batch per node', async () => {
    const { calls, offer } = harness({ delayDuration: 0 });
    await advanceTo(120);
    offer('1@1', null, ['n1'], 'a');
    offer('1@1', null, ['n1', 'n2'], 'b');
    offer('2@1', null, ['n1'], 'c');
    assert.equal(calls.length, 0, 'not synchronously inside offer()');
    await new Promise((r) => setImmediate(r));
    // No timer tick has happened (the clock still reads 120; the timer would first fire at 620).
    assert.equal(calls.length, 2);
    const byNode = new Map(calls.map((c) => [c.node, c]));
    assert.deepEqual(byNode.get('n1')!.items.map(names), [['a', 'b'], ['c']]);
    assert.deepEqual(byNode.get('n2')!.items.map(names), [['a', 'b']]);
    offer('1@1', null, ['n1'], 'd');
    await new Promise((r) => setImmediate(r));
    assert.equal(calls.length, 3);
    assert.deepEqual(names(calls[2].items[0]), ['d']);
  });

  it('sends what fell due during an in-flight send as soon as that send succeeds, not on the next tick', async () => {
    const { calls, offer, state, deferred } = harness({ delayDuration: 0, timerFrequency: 10_000 });
    const turn = () => new Promise((r) => setImmediate(r));
    state.hang = true;
    offer('1@1', null, ['n1'], 'a');
    await turn();
    assert.equal(calls.length, 1);
    offer('1@1', null, ['n1'], 'b');
    offer('2@1', null, ['n1'], 'c');
    await turn();
    assert.equal(calls.length, 1, 'one send at a time per node');
    deferred[0].resolve();
    await turn();
    assert.equal(calls.length, 2, 'no timer tick has happened (timerFrequency 10 s, clock unchanged)');
    assert.deepEqual(calls[1].items.map(names), [['b'], ['c']]);
  });

  it('does not crash when maxDelayDuration < delayDuration: the cap becomes delayDuration', async () => {
    const { calls, offer } = harness({ delayDuration: 1000, maxDelayDuration: 200 });
    offer('1@1', null, ['n1'], 'a');
    await advanceTo(600);
    offer('1@1', null, ['n1'], 'b'); // would re-arm to 1600, but the cap is 0 + 1000
    await advanceTo(1000);
    assert.equal(calls.length, 1);
    assert.deepEqual(names(calls[0].items[0]), ['a', 'b']);
  });

  it('applies a reload at once via reconfigure(): shorter timerFrequency and delay, also for buffered elements', async () => {
    const { calls, offer, timings, buf } = harness({ delayDuration: 10_000, maxDelayDuration: 30_000, timerFrequency: 10_000 });
    offer('1@1', null, ['n1'], 'a'); // due 10000 under the old timings
    await advanceTo(100);
    Object.assign(timings, { delayDuration: 20, timerFrequency: 50 });
    buf.reconfigure(); // re-armed at 100 → ticks at 150, 200…
    assert.equal(scheduled, 2);
    assert.equal(active.size, 1);
    await advanceTo(149);
    assert.equal(calls.length, 0);
    await advanceTo(150);
    assert.deepEqual(calls.map((c) => c.at), [150]);
    offer('1@1', null, ['n1'], 'b'); // t=150 → due 170 → tick 200
    await advanceTo(200);
    assert.deepEqual(calls.map((c) => c.at), [150, 200]);
  });

  it('picks up changed timings on the next offer or tick even without reconfigure()', async () => {
    const { calls, offer, timings } = harness({ delayDuration: 1000, timerFrequency: 1000 });
    offer('1@1', null, ['n1'], 'a'); // ticks at 1000, 2000…
    await advanceTo(10);
    Object.assign(timings, { timerFrequency: 100, delayDuration: 50 });
    offer('2@1', null, ['n1'], 'b'); // offer re-reads: re-armed at 10 → ticks at 110, 210…
    await advanceTo(110);
    assert.deepEqual(calls.map((c) => [c.at, c.items.map((i) => i.user)]), [[110, ['1@1', '2@1']]]);
    // A change seen only by a tick: the tick at 210 re-arms with the new frequency.
    offer('3@1', null, ['n1'], 'c'); // due 160 → tick 210
    Object.assign(timings, { timerFrequency: 30, delayDuration: 1000 }); // delay now 1000: not due at 210
    await advanceTo(210);
    assert.equal(calls.length, 1);
    Object.assign(timings, { delayDuration: 0 });
    await advanceTo(240); // next tick at 210 + 30
    assert.deepEqual(calls.map((c) => c.at), [110, 240]);
  });

  it('retries a rejected send on the next ticks, ahead of newer items, and warns once per failure streak', async () => {
    const { calls, offer, state, buf, warnings } = harness();
    state.failing = true;
    offer('A@1', null, ['n1'], 'a'); // due 1000
    await advanceTo(500);
    offer('B@1', null, ['n1'], 'b'); // due 1500
    await advanceTo(1000);
    assert.deepEqual(calls.map((c) => c.items.map((i) => i.user)), [['A@1']]);
    assert.equal(buf.stats().pending, 2);
    await advanceTo(1500); // retry of A goes first, B appended
    assert.deepEqual(calls.map((c) => [c.at, c.items.map((i) => i.user)]), [[1000, ['A@1']], [1500, ['A@1', 'B@1']]]);
    state.failing = false;
    await advanceTo(2000);
    assert.deepEqual(calls.map((c) => [c.at, c.items.map((i) => i.user)]).at(-1), [2000, ['A@1', 'B@1']]);
    assert.deepEqual(buf.stats(), { pending: 0, dropped: 0, sentBatches: 1, sentPayloads: 2 });
    assert.equal(warnings.length, 1);
    assert.equal(active.size, 0, 'timer stops once everything is delivered');
    await advanceTo(5000);
    assert.equal(calls.length, 3, 'nothing re-sent after success');
  });

  it('bounds the kept payloads by maxPending(), dropping the oldest and counting them', async () => {
    const { calls, offer, state, buf } = harness({ maxPending: 3 });
    state.failing = true;
    offer('A@1', null, ['n1'], 'a1');
    offer('A@1', null, ['n1'], 'a2');
    await advanceTo(1000); // A (2) fails, kept: 2
    offer('B@1', null, ['n1'], 'b1');
    offer('B@1', null, ['n1'], 'b2');
    await advanceTo(2000); // B (2) due at 2000: send [A, B] fails → kept 4 > 3 → a1 dropped
    assert.deepEqual(buf.stats(), { pending: 3, dropped: 1, sentBatches: 0, sentPayloads: 0 });
    state.maxPending = 1; // read on every check: a lowered bound applies at the next failure
    await advanceTo(2500); // [a2, B] fails again → a2 and b1 dropped
    assert.deepEqual(buf.stats(), { pending: 1, dropped: 3, sentBatches: 0, sentPayloads: 0 });
    state.failing = false;
    await advanceTo(3000);
    const last = calls.at(-1)!;
    assert.deepEqual(last.items.map((i) => [i.user, names(i), i.sourceTokens]), [['B@1', ['b2'], [null]]]);
    assert.deepEqual(buf.stats(), { pending: 0, dropped: 3, sentBatches: 1, sentPayloads: 1 });
  });

  it('drops the oldest across nodes, without touching the copy another node was sent', async () => {
    const { calls, offer, state, buf } = harness({ maxPending: 2 });
    state.failNodes.add('n1'); // the element is shared between a failing and a working node
    for (const name of ['a1', 'a2', 'a3']) offer('A@1', null, ['n1', 'n2'], name);
    await advanceTo(1000);
    const n2 = calls.find((c) => c.node === 'n2')!;
    assert.deepEqual(names(n2.items[0]), ['a1', 'a2', 'a3']);
    assert.deepEqual(buf.stats(), { pending: 2, dropped: 1, sentBatches: 1, sentPayloads: 3 });
    await advanceTo(1500);
    const retry = calls.at(-1)!;
    assert.equal(retry.node, 'n1');
    assert.deepEqual(names(retry.items[0]), ['a2', 'a3']);
    assert.deepEqual(retry.items[0].sourceTokens, [null, null]);
    assert.deepEqual(names(n2.items[0]), ['a1', 'a2', 'a3'], 'the shared item was not mutated');
    buf.stop();
  });

  it('does not overlap sends to one node: newer items wait behind an in-flight send and keep their order', async () => {
    const { calls, deferred, offer, state, buf } = harness();
    state.hang = true;
    offer('A@1', null, ['n1'], 'a');
    await advanceTo(500);
    offer('B@1', null, ['n1'], 'b');
    await advanceTo(1000); // A in flight
    await advanceTo(2000); // B due at 1500 but n1 is busy
    assert.equal(calls.length, 1);
    assert.equal(buf.stats().pending, 2);
    assert.equal(active.size, 0, 'no ticking while the only work waits for an in-flight send');
    state.hang = false;
    deferred[0].reject(new Error('timeout'));
    await settle();
    assert.equal(active.size, 1, 'the failure re-arms the timer');
    await advance(500);
    assert.deepEqual(calls.at(-1)!.items.map((i) => i.user), ['A@1', 'B@1']);
    assert.deepEqual(buf.stats(), { pending: 0, dropped: 0, sentBatches: 1, sentPayloads: 2 });
  });

  it('arms no timer while empty, one unref()d timer while pending, and stops it when drained', async () => {
    const { offer } = harness();
    await advanceTo(10_000);
    assert.equal(scheduled, 0);
    offer('1@1', null, ['n1'], 'a');
    offer('2@1', '/x', ['n2'], 'b');
    assert.equal(scheduled, 1);
    assert.equal(active.size, 1);
    assert.equal(unrefd.size, 1);
    await advance(1000);
    assert.equal(active.size, 0);
    await advance(20_000);
    assert.equal(scheduled, 1, 'no wake-ups scheduled while idle');
    offer('1@1', null, ['n1'], 'c');
    assert.equal(scheduled, 2);
    assert.equal(active.size, 1);
  });

  it('counts pending payloads once per target node', () => {
    const { offer, buf } = harness();
    offer('1@1', null, ['n1', 'n2'], 'a');
    offer('1@1', null, ['n3'], 'b');
    assert.equal(buf.stats().pending, 6); // 2 payloads x 3 nodes
  });

  it('flush() sends everything at once, one call per node, and settles only when the sends settle', async () => {
    const { calls, deferred, offer, state, buf } = harness();
    offer('A@1', null, ['n1', 'n2'], 'a');
    await advanceTo(300);
    offer('B@1', '/x', ['n2'], 'b'); // neither is due yet
    state.hang = true;
    let done = false;
    const flushed = buf.flush().then(() => void (done = true));
    assert.deepEqual(calls.map((c) => [c.at, c.node, c.items.map((i) => i.user)]), [
      [300, 'n1', ['A@1']],
      [300, 'n2', ['A@1', 'B@1']],
    ]);
    assert.equal(active.size, 0, 'nothing left to tick for');
    deferred[0].resolve();
    await settle();
    assert.equal(done, false, 'still waiting for n2');
    deferred[1].reject(new Error('down')); // a failed send does not reject flush(); its payloads stay pending
    await flushed;
    assert.deepEqual(buf.stats(), { pending: 2, dropped: 0, sentBatches: 1, sentPayloads: 1 });
  });

  it('flush() waits for an in-flight send to a node, then sends what queued behind it', async () => {
    const { calls, deferred, offer, state, buf } = harness();
    state.hang = true;
    offer('A@1', null, ['n1'], 'a');
    await advanceTo(1000); // A in flight
    offer('B@1', null, ['n1'], 'b');
    const flushed = buf.flush();
    assert.equal(calls.length, 1, 'B waits behind A');
    state.hang = false;
    deferred[0].resolve();
    await flushed;
    assert.deepEqual(calls.map((c) => c.items.map((i) => i.user)), [['A@1'], ['B@1']]);
    assert.deepEqual(buf.stats(), { pending: 0, dropped: 0, sentBatches: 2, sentPayloads: 2 });
  });

  it('stop() cancels the timer for good; later offers go out only via flush()', async () => {
    const { calls, offer, buf } = harness();
    offer('1@1', null, ['n1'], 'a');
    buf.stop();
    assert.equal(active.size, 0);
    offer('1@1', null, ['n1'], 'b');
    assert.equal(active.size, 0);
    await advanceTo(5000);
    assert.equal(calls.length, 0);
    await buf.flush();
    assert.deepEqual(names(calls[0].items[0]), ['a', 'b']);
  });
});
