/**
 * Issue 9 item 10 and issue 14 item 7, on a real process: SIGTERM in the middle of a flood of pushes
 * loses nothing that was accepted. Every push answered 202 reaches every socket of its user that
 * was open (Socket.IO polling and websocket, plain WebSocket), no request in flight is reset, the
 * process exits 0 within tidings.shutdown.graceMs, and the sockets get spread reconnect hints.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'socket.io-client';
import { makeConfigDir } from '../helpers/config-dir.js';
import { connectPlainWs, connectSocketIo, login, type PlainWs } from '../helpers/node.js';
import { startProcessNode } from '../helpers/process-node.js';
import { Agent, pushOnce } from '../helpers/push-flood.js';
import { waitFor } from '../helpers/wait.js';

const GRACE_MS = 6000;
const SPREAD_MS = 5000;
const USERS: [string, string, number][] = [['alice@example.com', 'alice-pw', 3], ['bob@example.com', 'bob-pw', 4]];

interface Watched {
  user: number;
  kind: string;
  seqs: Set<number>;
  hint: number | null;
  closedHow: string | null;
}

describe('SIGTERM under load', () => {
  it('every accepted push reaches every open socket, no request is reset, exit 0 within the grace time, spread reconnect hints', async () => {
    const cfg = makeConfigDir({ properties: { 'tidings.shutdown.graceMs': GRACE_MS, 'tidings.shutdown.reconnectSpreadMs': SPREAD_MS, 'tidings.connections.maxPerUser': 20 } });
    const p = await startProcessNode(cfg.dir);
    const watched: Watched[] = [];
    const clients: (Socket | PlainWs)[] = [];
    try {
      for (const [name, pw, user] of USERS) {
        const l = await login(p.url, name, pw);
        for (let i = 0; i < 3; i++) {
          for (const transport of ['polling', 'websocket'] as const) {
            const w: Watched = { user, kind: `socket.io ${transport}`, seqs: new Set(), hint: null, closedHow: null };
            const s = await connectSocketIo(p.url, l, { transports: [transport] });
            s.on('flood', (d: { seq: number }) => w.seqs.add(d.seq));
            s.on('server:restart', (h: { reconnectAfterMs: number }) => (w.hint = h.reconnectAfterMs));
            s.on('disconnect', (reason) => (w.closedHow = reason));
            watched.push(w);
            clients.push(s);
          }
          const w: Watched = { user, kind: 'plain websocket', seqs: new Set(), hint: null, closedHow: null };
          const ws = await connectPlainWs(p.url, l);
          ws.ws.on('message', (data) => {
            const f = JSON.parse(String(data));
            if (f.name === 'flood') w.seqs.add(f.args[0].seq);
          });
          ws.ws.on('close', (code, reason) => {
            w.closedHow = String(code);
            const m = /^server shutting down; reconnectAfterMs=(\d+)$/.exec(String(reason));
            if (m) w.hint = Number(m[1]);
          });
          watched.push(w);
          clients.push(ws);
        }
      }

      const agent = new Agent({ keepAlive: true, maxSockets: 16 });
      const accepted = new Map<number, number>(); // seq → user
      const answers = new Map<string, number>();
      const errors: string[] = [];
      let seq = 0;
      let sigtermAt = 0;
      const pusher = async () => {
        for (;;) {
          const n = seq++;
          const user = USERS[n % USERS.length][2];
          const r = await pushOnce(p.url, agent, { context: 1, user, event: 'flood', data: { seq: n } });
          if ('error' in r) {
            errors.push(r.error);
            return;
          }
          answers.set(String(r.status), (answers.get(String(r.status)) ?? 0) + 1);
          if (r.status === 202) accepted.set(n, user);
          else return;
          if (accepted.size === 400 && sigtermAt === 0) {
            sigtermAt = Date.now();
            p.kill('SIGTERM');
          }
        }
      };
      await Promise.all(Array.from({ length: 16 }, pusher));
      const exit = await p.exited;
      const took = Date.now() - sigtermAt;
      agent.destroy();

      assert.deepEqual(exit, { code: 0, signal: null });
      assert.ok(took < GRACE_MS + 1000, `exited ${took} ms after SIGTERM`);
      assert.deepEqual(errors.filter((e) => e !== 'ECONNREFUSED'), [], `every request in flight was answered (answers: ${JSON.stringify([...answers])})`);
      assert.ok((answers.get('503') ?? 0) > 0, 'pushes after SIGTERM are refused with 503');
      assert.ok(accepted.size >= 400);

      await waitFor('every socket to be closed', () => watched.every((w) => w.closedHow !== null));
      for (const w of watched) {
        const missing = [...accepted].filter(([n, u]) => u === w.user && !w.seqs.has(n)).map(([n]) => n);
        assert.deepEqual(missing, [], `${w.kind} of user ${w.user} missed ${missing.length} accepted pushes`);
        assert.equal(w.closedHow, w.kind === 'plain websocket' ? '1001' : 'io server disconnect', w.kind);
      }

      const hints = watched.map((w) => w.hint);
      assert.ok(hints.every((h) => typeof h === 'number' && Number.isInteger(h) && h >= 0 && h <= SPREAD_MS), `every socket got a hint: ${JSON.stringify(hints)}`);
      const values = hints as number[];
      assert.ok(new Set(values).size >= values.length - 2, `hints differ: ${JSON.stringify(values)}`);
      assert.ok(Math.max(...values) - Math.min(...values) >= SPREAD_MS / 2, `hints are spread over the window: ${JSON.stringify(values)}`);
    } finally {
      for (const c of clients) ('ws' in c ? c.ws.terminate() : c.close());
      p.kill('SIGKILL');
      cfg.remove();
    }
  });
});
