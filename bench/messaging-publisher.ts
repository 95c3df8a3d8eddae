/**
 * The publisher of bench/messaging.ts, as its own process (forked, commands over IPC).
 * `max`: `concurrency` requests in flight over keep-alive sockets for `durationMs` (closed loop).
 * `rate`: a fixed number of requests per second for `durationMs` (latency runs).
 * `burst`: mail-like open-loop load: `bursts` per second, each burst a few events for one user,
 *   one request each, at `offsetsMs` after the burst's start (all within the coalescing window of
 *   the remote buffer: a mail arrives → new-mail event, unread counter, folder status, …).
 * Every event's data is `{p: phase, s: sequence, u: user, t: monotonic µs at send}`, so the
 * receiver can check routing, count duplicates and losses, and measure latency. Events go to
 * users `base` … `base + users - 1`.
 */
import { Agent, request } from 'node:http';

export type PublisherTarget =
  /** System A (Socket.IO cluster) and system R (raw ws): `POST /publish {user, event, data}`. */
  | { readonly kind: 'socketio' | 'rawws'; readonly url: string }
  /** A Node server's no-op endpoint: what one HTTP request costs a Node server, nothing else. */
  | { readonly kind: 'noop'; readonly url: string }
  /** Nchan: `POST /pub?id=u<user>` with the frame text `{"name":…,"args":[data]}` as the message. */
  | { readonly kind: 'nchan'; readonly url: string }
  /** `batch` > 1: that many events per request, as a JSON array (tidings' batch form of POST /api/push). */
  | { readonly kind: 'tidings'; readonly url: string; readonly token: string; readonly context: number; readonly batch?: number };

export interface UserRange {
  /** First user id. */
  readonly base: number;
  readonly users: number;
}

export type PublisherCommand =
  | { readonly cmd: 'target'; readonly target: PublisherTarget; readonly range: UserRange; readonly concurrency: number }
  | { readonly cmd: 'run'; readonly phase: number; readonly mode: 'max'; readonly durationMs: number }
  | { readonly cmd: 'run'; readonly phase: number; readonly mode: 'rate'; readonly rate: number; readonly durationMs: number }
  | { readonly cmd: 'run'; readonly phase: number; readonly mode: 'burst'; readonly bursts: number; readonly offsetsMs: readonly number[]; readonly durationMs: number }
  | { readonly cmd: 'exit' };

export interface PublisherReport {
  readonly phase: number;
  /** Events in requests answered 2xx. */
  readonly sent: number;
  readonly errors: number;
  readonly firstError: string | null;
  /** Monotonic µs of the first send and of the last 2xx answer. */
  readonly startUs: number;
  readonly endUs: number;
}

const nowUs = (): number => Number(process.hrtime.bigint() / 1000n);

let target: PublisherTarget | null = null;
let range: UserRange = { base: 1, users: 1000 };
let agent = new Agent({ keepAlive: true, maxSockets: 64 });

/** Events per request for the current target. */
const perRequest = (): number => (target?.kind === 'tidings' ? Math.max(1, target.batch ?? 1) : 1);

const userOf = (s: number): number => range.base + (s % range.users);

/** Sends events seq … seq + perRequest() - 1 in one request; `user` overrides the user of a single event. */
function send(phase: number, seq: number, user?: number): Promise<string | null> {
  const t = target!;
  const event = (s: number): Record<string, unknown> => {
    const u = user ?? userOf(s);
    const data = { p: phase, s, u, t: nowUs() };
    return t.kind === 'tidings' ? { context: t.context, user: u, event: 'bench', data } : { user: u, event: 'bench', data };
  };
  const n = perRequest();
  let body: string;
  let path: string;
  if (t.kind === 'nchan') {
    const e = event(seq);
    body = JSON.stringify({ name: 'bench', args: [e.data] });
    path = `/pub?id=u${e.user as number}`;
  } else {
    body = JSON.stringify(n === 1 ? event(seq) : Array.from({ length: n }, (_, i) => event(seq + i)));
    path = t.kind === 'tidings' ? '/api/push' : t.kind === 'noop' ? '/noop' : '/publish';
  }
  const u = new URL(t.url);
  const headers: Record<string, string> = { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) };
  if (t.kind === 'tidings') headers.authorization = `Bearer ${t.token}`;
  return new Promise((resolve) => {
    const req = request({ agent, host: u.hostname, port: u.port, path, method: 'POST', headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        const s = res.statusCode ?? 0;
        const ok = t.kind === 'tidings' ? s === 202 : t.kind === 'nchan' ? s >= 200 && s < 300 : s === 200;
        resolve(ok ? null : `HTTP ${s}: ${text.slice(0, 300)}`);
      });
      res.on('error', (e) => resolve(String(e)));
    });
    req.on('error', (e) => resolve(String(e)));
    req.end(body);
  });
}

class Tally {
  sent = 0;
  errors = 0;
  firstError: string | null = null;
  readonly startUs = nowUs();
  endUs = this.startUs;
  done(n: number, err: string | null): void {
    if (err === null) {
      this.sent += n;
      this.endUs = nowUs();
    } else {
      this.errors++;
      this.firstError ??= err;
    }
  }
  report(phase: number): PublisherReport {
    return { phase, sent: this.sent, errors: this.errors, firstError: this.firstError, startUs: this.startUs, endUs: this.endUs };
  }
}

async function runMax(phase: number, durationMs: number, concurrency: number): Promise<PublisherReport> {
  let seq = 0;
  const t = new Tally();
  const deadline = t.startUs + durationMs * 1000;
  const worker = async (): Promise<void> => {
    const n = perRequest();
    while (nowUs() < deadline) {
      const first = seq;
      seq += n;
      t.done(n, await send(phase, first));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return t.report(phase);
}

/** Runs `fire(i)` at `startUs + dueUs(i)` for i = 0 … total-1 (open loop: never waits for answers). */
async function schedule(t: Tally, total: number, dueUs: (i: number) => number, fire: (i: number) => Promise<void>): Promise<void> {
  const pending: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const wait = (t.startUs + dueUs(i) - nowUs()) / 1000;
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    pending.push(fire(i));
  }
  await Promise.all(pending);
}

async function runRate(phase: number, durationMs: number, rate: number): Promise<PublisherReport> {
  const t = new Tally();
  const intervalUs = 1e6 / rate;
  await schedule(t, Math.round((rate * durationMs) / 1000), (i) => i * intervalUs, async (seq) => t.done(1, await send(phase, seq)));
  return t.report(phase);
}

/**
 * Burst b (started at b / bursts s) is for user userOf(b × stride) and sends one event at each
 * offset; the stride spreads consecutive bursts over the users. Events are numbered in order of
 * their due time (so sequence numbers stay unique).
 */
async function runBurst(phase: number, durationMs: number, bursts: number, offsetsMs: readonly number[]): Promise<PublisherReport> {
  const t = new Tally();
  const nBursts = Math.round((bursts * durationMs) / 1000);
  const stride = 7919 % range.users || 1;
  const events: { dueUs: number; user: number }[] = [];
  for (let b = 0; b < nBursts; b++) {
    const startUs = (b * 1e6) / bursts;
    const user = userOf(b * stride);
    for (const o of offsetsMs) events.push({ dueUs: startUs + o * 1000, user });
  }
  events.sort((x, y) => x.dueUs - y.dueUs);
  await schedule(t, events.length, (i) => events[i].dueUs, async (i) => t.done(1, await send(phase, i, events[i].user)));
  return t.report(phase);
}

let concurrency = 64;
process.on('message', (m: PublisherCommand) => {
  void (async () => {
    switch (m.cmd) {
      case 'target':
        target = m.target;
        range = m.range;
        concurrency = m.concurrency;
        agent.destroy();
        agent = new Agent({ keepAlive: true, maxSockets: m.concurrency });
        process.send!({ ok: true });
        return;
      case 'run': {
        const r = m.mode === 'max' ? await runMax(m.phase, m.durationMs, concurrency)
          : m.mode === 'rate' ? await runRate(m.phase, m.durationMs, m.rate)
          : await runBurst(m.phase, m.durationMs, m.bursts, m.offsetsMs);
        process.send!(r);
        return;
      }
      case 'exit':
        agent.destroy();
        process.exit(0);
    }
  })();
});
process.on('disconnect', () => process.exit(0));
