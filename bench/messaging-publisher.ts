/**
 * The publisher of bench/messaging.ts, as its own process (forked, commands over IPC).
 * `max`: `concurrency` requests in flight over keep-alive sockets for `durationMs`.
 * `rate`: a fixed number of requests per second for `durationMs` (latency runs).
 * Every event's data is `{p: phase, s: sequence, u: user, t: monotonic µs at send}`, so the
 * receiver can check routing, count duplicates and losses, and measure latency.
 */
import { Agent, request } from 'node:http';

export type PublisherTarget =
  | { readonly kind: 'socketio'; readonly url: string }
  /** The baseline node's no-op endpoint: what one HTTP request costs a Node server, nothing else. */
  | { readonly kind: 'noop'; readonly url: string }
  /** `batch` > 1: that many events per request, as a JSON array (tidings' batch form of POST /api/push). */
  | { readonly kind: 'tidings'; readonly url: string; readonly token: string; readonly context: number; readonly batch?: number };

export type PublisherCommand =
  | { readonly cmd: 'target'; readonly target: PublisherTarget; readonly users: number; readonly concurrency: number }
  | { readonly cmd: 'run'; readonly phase: number; readonly mode: 'max'; readonly durationMs: number }
  | { readonly cmd: 'run'; readonly phase: number; readonly mode: 'rate'; readonly rate: number; readonly durationMs: number }
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
let users = 1000;
let agent = new Agent({ keepAlive: true, maxSockets: 64 });

/** Events per request for the current target. */
const perRequest = (): number => (target?.kind === 'tidings' ? Math.max(1, target.batch ?? 1) : 1);

/** Sends events seq … seq + perRequest() - 1 in one request. */
function send(phase: number, seq: number): Promise<string | null> {
  const t = target!;
  const event = (s: number): Record<string, unknown> => {
    const user = 1 + (s % users);
    const data = { p: phase, s, u: user, t: nowUs() };
    return t.kind === 'tidings' ? { context: t.context, user, event: 'bench', data } : { user, event: 'bench', data };
  };
  const n = perRequest();
  const body = JSON.stringify(n === 1 ? event(seq) : Array.from({ length: n }, (_, i) => event(seq + i)));
  const u = new URL(t.kind === 'tidings' ? `${t.url}/api/push` : t.kind === 'noop' ? `${t.url}/noop` : `${t.url}/publish`);
  const headers: Record<string, string> = { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) };
  if (t.kind === 'tidings') headers.authorization = `Bearer ${t.token}`;
  return new Promise((resolve) => {
    const req = request({ agent, host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        const ok = t.kind === 'tidings' ? res.statusCode === 202 : res.statusCode === 200;
        resolve(ok ? null : `HTTP ${res.statusCode}: ${text.slice(0, 300)}`);
      });
      res.on('error', (e) => resolve(String(e)));
    });
    req.on('error', (e) => resolve(String(e)));
    req.end(body);
  });
}

async function runMax(phase: number, durationMs: number, concurrency: number): Promise<PublisherReport> {
  let seq = 0;
  let sent = 0;
  let errors = 0;
  let firstError: string | null = null;
  const startUs = nowUs();
  let endUs = startUs;
  const deadline = startUs + durationMs * 1000;
  const worker = async (): Promise<void> => {
    const n = perRequest();
    while (nowUs() < deadline) {
      const first = seq;
      seq += n;
      const err = await send(phase, first);
      if (err === null) {
        sent += n;
        endUs = nowUs();
      } else {
        errors++;
        firstError ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { phase, sent, errors, firstError, startUs, endUs };
}

async function runRate(phase: number, durationMs: number, rate: number): Promise<PublisherReport> {
  const total = Math.round((rate * durationMs) / 1000);
  const intervalUs = 1e6 / rate;
  let sent = 0;
  let errors = 0;
  let firstError: string | null = null;
  const startUs = nowUs();
  let endUs = startUs;
  const pending: Promise<void>[] = [];
  for (let seq = 0; seq < total; seq++) {
    const due = startUs + seq * intervalUs;
    const wait = (due - nowUs()) / 1000;
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    pending.push(send(phase, seq).then((err) => {
      if (err === null) {
        sent++;
        endUs = nowUs();
      } else {
        errors++;
        firstError ??= err;
      }
    }));
  }
  await Promise.all(pending);
  return { phase, sent, errors, firstError, startUs, endUs };
}

let concurrency = 64;
process.on('message', (m: PublisherCommand) => {
  void (async () => {
    switch (m.cmd) {
      case 'target':
        target = m.target;
        users = m.users;
        concurrency = m.concurrency;
        agent.destroy();
        agent = new Agent({ keepAlive: true, maxSockets: m.concurrency });
        process.send!({ ok: true });
        return;
      case 'run': {
        const r = m.mode === 'max' ? await runMax(m.phase, m.durationMs, concurrency) : await runRate(m.phase, m.durationMs, m.rate);
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
