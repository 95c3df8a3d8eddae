// ResumeFeed on a memory log whose reads can be held open: live events that arrive while the log
// is read, out of order, or after a filtered gap still reach the client once each, in offset order.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryEventLog } from '../../src/adapters/memory/memory-event-log.js';
import { withId } from '../../src/delivery/wire.js';
import { formatOffset, type Offset } from '../../src/history/offset.js';
import { ResumeFeed } from '../../src/history/resume-feed.js';
import type { PushEvent } from '../../src/domain/types.js';
import type { AppendEntry, EventLog, HistoryLimits, LogRead } from '../../src/ports/event-log.js';
import { waitFor } from '../helpers/wait.js';

const LIMITS: HistoryLimits = { size: 100, ttlMs: 600_000 };
const USER = '3@1';

/** A memory log whose reads wait until `release()` while `holding`. */
class SlowLog implements EventLog {
  readonly inner = new MemoryEventLog();
  holding = false;
  reads = 0;
  #waiters: (() => void)[] = [];
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  append(user: string, e: AppendEntry, l: HistoryLimits): Promise<Offset> {
    return this.inner.append(user, e, l);
  }
  async read(user: string, since: Offset | null, l: HistoryLimits): Promise<LogRead> {
    this.reads++;
    const r = await this.inner.read(user, since, l);
    if (this.holding) await new Promise<void>((res) => this.#waiters.push(res));
    return r;
  }
  release(): void {
    this.holding = false;
    for (const w of this.#waiters.splice(0)) w();
  }
}

async function publish(log: SlowLog, n: number, pathFilter: string | null = null): Promise<{ event: PushEvent; json: string }> {
  const body = JSON.stringify({ name: 'e', args: [n], namespace: '/' });
  const id = formatOffset(await log.append(USER, { body, pathFilter, sourceToken: null }, LIMITS));
  return { event: { id, name: 'e', args: [n], namespace: '/' }, json: withId(id, body) };
}

function feedOn(log: SlowLog, path = '/p') {
  const got: number[] = [];
  const notRecovered: string[] = [];
  const feed = new ResumeFeed({ log, limits: () => LIMITS, scope: { user: USER, path, connectionId: 'c1' } });
  const sink = { event: (e: PushEvent) => void got.push(e.args[0] as number), notRecovered: (why: string) => void notRecovered.push(why) };
  return { feed, got, notRecovered, sink };
}

describe('ResumeFeed', () => {
  it('holds live events while the replay is read, then sends replay and live once each, in order', async () => {
    const log = new SlowLog();
    const e1 = await publish(log, 1);
    await publish(log, 2);
    const f = feedOn(log);
    log.holding = true;
    const prepared = f.feed.prepare(e1.event.id.includes('-') ? { epoch: e1.event.id.split('-')[0], seq: 1 } : null);
    // Appended after the read looked at the log: the replay does not have it, the live path does.
    await waitFor('the read to start', () => log.reads === 1);
    const e3 = await publish(log, 3);
    f.feed.push(e3.event, e3.json);
    log.release();
    await prepared;
    f.feed.attach(f.sink);
    const e4 = await publish(log, 4);
    f.feed.push(e4.event, e4.json);
    f.feed.push(e3.event, e3.json); // a late duplicate (a remote batch) is dropped
    assert.deepEqual(f.got, [2, 3, 4]);
  });

  it('a live event past a gap makes it read the gap from the log: no event skipped, none twice', async () => {
    const log = new SlowLog();
    const f = feedOn(log);
    await f.feed.prepare(null);
    f.feed.attach(f.sink);
    const e1 = await publish(log, 1);
    const e2 = await publish(log, 2);
    const e3 = await publish(log, 3, '/elsewhere');
    const e4 = await publish(log, 4);
    f.feed.push(e1.event, e1.json);
    // e2 is still on its way from another node; e3 is not for this path; e4 arrives first.
    f.feed.push(e4.event, e4.json);
    await waitFor('the gap to be filled', () => f.got.length === 3);
    f.feed.push(e2.event, e2.json);
    void e3;
    assert.deepEqual(f.got, [1, 2, 4]);
    assert.equal(f.feed.position(), e4.event.id);
  });

  it('a new epoch (the log was lost) is read from its start, and an old offset is not recovered', async () => {
    const log = new SlowLog();
    const old = await publish(log, 1);
    const f = feedOn(log);
    await f.feed.prepare(null);
    f.feed.attach(f.sink);
    // The log is lost; the next events are of a new epoch.
    (log as { inner: MemoryEventLog }).inner = new MemoryEventLog();
    const n1 = await publish(log, 10);
    const n2 = await publish(log, 11);
    f.feed.push(n2.event, n2.json);
    await waitFor('the new epoch from its start', () => f.got.length === 2);
    assert.deepEqual(f.got, [10, 11]);
    void n1;
    const g = feedOn(log);
    await g.feed.prepare({ epoch: old.event.id.split('-')[0], seq: 1 });
    g.feed.attach(g.sink);
    assert.deepEqual(g.notRecovered, ['epoch']);
    assert.equal(g.feed.position(), n2.event.id);
  });
});

describe('ResumeFeed: how a resume was answered (tidings_history_replays_total)', () => {
  const answered = async (log: EventLog, since: Offset | null): Promise<string[]> => {
    const results: string[] = [];
    const feed = new ResumeFeed({ log, limits: () => LIMITS, scope: { user: USER, path: '/p', connectionId: 'c1' }, onResume: (r) => void results.push(r) });
    await feed.tryPrepare(since);
    feed.attach({ event: () => undefined, notRecovered: () => undefined });
    return results;
  };

  it('counts recovered, not recovered and unreadable resumes once each, and a connection "from now" not at all', async () => {
    const log = new SlowLog();
    const first = await publish(log, 1);
    await publish(log, 2);
    const [epoch] = first.event.id.split('-');
    assert.deepEqual(await answered(log, { epoch, seq: 1 }), ['recovered']);
    assert.deepEqual(await answered(log, { epoch, seq: 2 }), ['recovered']);
    assert.deepEqual(await answered(log, { epoch: 'eother', seq: 1 }), ['not_recovered']);
    assert.deepEqual(await answered(log, { epoch, seq: 99 }), ['not_recovered']);
    assert.deepEqual(await answered(log, null), []);
    const broken: EventLog = { start: async () => {}, stop: async () => {}, append: () => Promise.reject(new Error('down')), read: () => Promise.reject(new Error('down')) };
    assert.deepEqual(await answered(broken, { epoch, seq: 1 }), ['not_recovered']);
  });
});
