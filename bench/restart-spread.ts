/**
 * Rolling-restart stampede: how many clients of a stopping node come back in the same second.
 *
 *   npm run build && node dist/bench/restart-spread.js
 *
 * Two node processes on in-memory backends: N plain WebSockets (BENCH_SOCKETS, default 3000) on
 * node A, each client holding a session on node B as well. A gets SIGTERM; each client, when its
 * socket is closed, reconnects to B after the delay in the close reason
 * (`server shutting down; reconnectAfterMs=N`), as a client following the hint does. Reported:
 * reconnects landing on B per second (by the time B's socket opened), the busiest second, and how
 * long A took to stop. BENCH_SPREAD_MS (default: the built-in 10000) sets
 * tidings.shutdown.reconnectSpreadMs; 0 shows the stampede without a hint.
 */
import { performance } from 'node:perf_hooks';
import { makeConfigDir } from '../test/helpers/config-dir.js';
import { connectPlainWs, login } from '../test/helpers/node.js';
import { startProcessNode } from '../test/helpers/process-node.js';

const N = Number(process.env.BENCH_SOCKETS ?? 3000);
const SPREAD = process.env.BENCH_SPREAD_MS;

async function main(): Promise<void> {
  const props = { 'tidings.connections.maxPerUser': N + 10, ...(SPREAD !== undefined ? { 'tidings.shutdown.reconnectSpreadMs': SPREAD } : {}) };
  const cfgA = makeConfigDir({ properties: props });
  const cfgB = makeConfigDir({ properties: props });
  const a = await startProcessNode(cfgA.dir);
  const b = await startProcessNode(cfgB.dir);
  try {
    const onA = await login(a.url, 'alice@example.com', 'alice-pw');
    const onB = await login(b.url, 'alice@example.com', 'alice-pw');
    const back: number[] = [];
    const hints: number[] = [];
    const closed: number[] = [];
    let t0 = 0;
    const pending: Promise<void>[] = [];
    for (let i = 0; i < N; i += 100) {
      const batch = await Promise.all(Array.from({ length: Math.min(100, N - i) }, () => connectPlainWs(a.url, onA)));
      for (const s of batch) {
        s.ws.once('close', (_code, reason) => {
          const m = /reconnectAfterMs=(\d+)/.exec(String(reason));
          const wait = m ? Number(m[1]) : 0;
          hints.push(wait);
          closed.push(performance.now() - t0);
          pending.push(new Promise<void>((resolve) => setTimeout(() => void connectPlainWs(b.url, onB).then((c) => {
            back.push(performance.now() - t0);
            c.ws.terminate();
            resolve();
          }, () => resolve()), wait)));
        });
      }
    }
    t0 = performance.now();
    a.kill('SIGTERM');
    const exit = await a.exited;
    const stopMs = performance.now() - t0;
    while (pending.length < N) await new Promise((r) => setTimeout(r, 50));
    await Promise.all(pending);
    const perSecond = new Map<number, number>();
    for (const t of back) perSecond.set(Math.floor(t / 1000), (perSecond.get(Math.floor(t / 1000)) ?? 0) + 1);
    const seconds = [...perSecond.keys()].sort((x, y) => x - y);
    console.log(`node ${process.version}; ${N} plain WebSockets; reconnectSpreadMs=${SPREAD ?? 'default (10000)'}`);
    console.log(`node A stopped in ${stopMs.toFixed(0)} ms, exit ${exit.code}; ${back.length} of ${N} clients reconnected to node B`);
    console.log(`hints: min ${Math.min(...hints)} ms, max ${Math.max(...hints)} ms; sockets closed by A from ${Math.min(...closed).toFixed(0)} to ${Math.max(...closed).toFixed(0)} ms after SIGTERM`);
    console.log(`busiest second: ${Math.max(...perSecond.values())} reconnects (${((100 * Math.max(...perSecond.values())) / N).toFixed(1)} % of the clients)`);
    console.log('\n| second after SIGTERM | reconnects |\n|---:|---:|');
    for (const s of seconds) console.log(`| ${s} | ${perSecond.get(s)} |`);
  } finally {
    a.kill('SIGKILL');
    b.kill('SIGKILL');
    await Promise.all([a.exited, b.exited]);
    cfgA.remove();
    cfgB.remove();
  }
}

void main().catch((e) => {
  console.error(e);
  process.exit(1);
});
