import assert from 'node:assert/strict';
import { makeConfigDir, ADMIN_TOKEN, DEMO_DIRECTORY, PUSH_TOKEN } from '../helpers/config-dir.js';
import { startProcessNode, type ProcessNode } from '../helpers/process-node.js';
import { MemoryCluster } from '../../src/adapters/memory/memory-cluster.js';
import { memoryBackends } from '../../src/app/backends.js';
import { connectPlainWs, login, push, startNode, type Login, type PlainWs, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait.js';

/** The demo directory plus erin (6@1), a fresh user for cases that need one to themselves. */
export const DIRECTORY = DEMO_DIRECTORY + '  - { id: 6, context: 1, login: erin@example.com, password: "{PLAIN}erin-pw" }\n';

/** Three `tidings serve` processes on one Redis url, each with its own config dir and node id. */
export interface Cluster {
  nodes: ProcessNode[];
  ids: string[];
  urls: string[];
  /** Each node's config directory, to edit its files. */
  dirs: ReturnType<typeof makeConfigDir>[];
  /** Stops every node by its pid (SIGTERM, SIGKILL after 5 s) and removes the config dirs. */
  stop(): Promise<void>;
}

/** What the cluster semantics tests need of a cluster, whatever its nodes run on. */
export type ClusterLike = Pick<Cluster, 'ids' | 'urls' | 'stop'> & { dirs: { write(path: string, text: string): void }[] };

/** Three TidingsNode instances in this process sharing one set of in-memory backends. */
export async function startMemoryCluster(props: Record<string, string | number | boolean> = {}, tag = 'm'): Promise<ClusterLike> {
  const shared = new MemoryCluster();
  const ids = [1, 2, 3].map((i) => `${tag}${i}-${process.pid}`);
  const nodes: TestNode[] = [];
  const stop = async () => {
    for (const n of nodes.splice(0).reverse()) await n.stop();
  };
  try {
    for (const id of ids) nodes.push(await startNode({ directory: DIRECTORY, properties: { 'tidings.node.id': id, ...props }, backends: (nodeId) => memoryBackends(nodeId, shared) }));
  } catch (err) {
    await stop();
    throw err;
  }
  return { ids, urls: nodes.map((n) => n.url), dirs: nodes.map((n) => ({ write: n.write })), stop };
}

const live = new Set<ProcessNode>();
let exitHook = false;
/** Last resort if the test process ends without its after() hooks: SIGKILL the nodes by pid. */
function track(n: ProcessNode): void {
  live.add(n);
  void n.exited.then(() => live.delete(n));
  if (!exitHook) {
    exitHook = true;
    process.once('exit', () => {
      for (const x of live) if (x.child.pid) try { process.kill(x.child.pid, 'SIGKILL'); } catch { /* gone */ }
    });
  }
}

export async function startCluster(redisUrl: string, props: Record<string, string | number | boolean> = {}, tag = 'n', files: Record<string, string> = {}): Promise<Cluster> {
  const dirs: ReturnType<typeof makeConfigDir>[] = [];
  const nodes: ProcessNode[] = [];
  const ids = [1, 2, 3].map((i) => `${tag}${i}-${process.pid}`);
  const stop = async () => {
    await Promise.all(nodes.map((n) => stopNode(n)));
    for (const d of dirs) d.remove();
  };
  try {
    for (const id of ids) dirs.push(makeConfigDir({ directory: DIRECTORY, properties: { 'tidings.node.id': id, 'tidings.redis.url': redisUrl, ...props }, files }));
    const started = await Promise.allSettled(dirs.map((d) => startProcessNode(d.dir)));
    for (const s of started) if (s.status === 'fulfilled') {
      nodes.push(s.value);
      track(s.value);
    }
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    await waitFor('all three nodes to be ready and list each other', async () => {
      for (const n of nodes) if (!(await isReady(n.url))) return false;
      const m = await members(nodes[0].url);
      return ids.every((id) => m.includes(id));
    }, 20_000, 100);
  } catch (err) {
    await stop();
    throw err;
  }
  return { nodes, ids, urls: nodes.map((n) => n.url), dirs, stop };
}

/** Ends one node by its pid; safe to call twice. */
export async function stopNode(n: ProcessNode): Promise<void> {
  if (n.child.exitCode !== null || n.child.signalCode !== null) return;
  n.kill('SIGTERM');
  const t = setTimeout(() => n.kill('SIGKILL'), 5000);
  await n.exited;
  clearTimeout(t);
}

export async function isReady(url: string): Promise<boolean> {
  try {
    const r = await fetch(`${url}/health/ready`, { signal: AbortSignal.timeout(3000) });
    await r.arrayBuffer();
    return r.status === 200;
  } catch {
    return false;
  }
}

export async function members(url: string): Promise<string[]> {
  const r = await fetch(`${url}/api/admin/status`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` }, signal: AbortSignal.timeout(3000) });
  if (r.status !== 200) throw new Error(`status ${r.status}: ${await r.text()}`);
  const j = (await r.json()) as { members: { nodeId: string }[] };
  return j.members.map((m) => m.nodeId);
}

/** `tidings_remote_batches_received_total` of a node. */
export async function batchesReceived(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = /^tidings_remote_batches_received_total(?:\{[^}]*\})? (\d+(?:\.\d+)?)$/m.exec(text);
  return m ? Number(m[1]) : 0;
}

export async function adminSet(url: string, body: { key: string; value: unknown; context: number; user?: number }): Promise<any> {
  const r = await fetch(`${url}/api/admin/config`, { method: 'PUT', headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_TOKEN}` }, body: JSON.stringify(body) });
  const j = await r.json();
  if (r.status !== 200) throw new Error(`config set: ${r.status} ${JSON.stringify(j)}`);
  return j;
}

export async function adminUnset(url: string, key: string, context: number, user?: number): Promise<any> {
  const q = new URLSearchParams({ key, context: String(context), ...(user !== undefined ? { user: String(user) } : {}) });
  const r = await fetch(`${url}/api/admin/config?${q}`, { method: 'DELETE', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  const j = await r.json();
  if (r.status !== 200) throw new Error(`config unset: ${r.status} ${JSON.stringify(j)}`);
  return j;
}

export async function adminReload(url: string): Promise<any> {
  const r = await fetch(`${url}/api/admin/reload`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  const j = await r.json();
  if (r.status !== 200) throw new Error(`reload: ${r.status} ${JSON.stringify(j)}`);
  return j;
}

export async function adminGet(url: string, key: string, context: number, user?: number): Promise<any> {
  const q = new URLSearchParams({ key, context: String(context), ...(user !== undefined ? { user: String(user) } : {}) });
  const r = await fetch(`${url}/api/admin/config?${q}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  return r.json();
}

/** A plain WebSocket that records the arrival time of every frame. */
export interface TimedWs extends PlainWs {
  at: number[];
}

export async function connectTimed(url: string, l: Login, opts: Parameters<typeof connectPlainWs>[2] = {}): Promise<TimedWs> {
  const c = await connectPlainWs(url, l, opts);
  const at: number[] = [];
  c.ws.on('message', () => at.push(Date.now()));
  return Object.assign(c, { at });
}

/** Ids of the frames with the given event name. */
export const idsOf = (c: PlainWs, name?: string): string[] => c.frames.filter((f) => name === undefined || f.name === name).map((f) => f.id as string);

/** Fails if any id appears twice. */
export function duplicates(ids: string[]): string[] {
  const seen = new Set<string>();
  const dup: string[] = [];
  for (const id of ids) {
    if (seen.has(id)) dup.push(id);
    seen.add(id);
  }
  return dup;
}

export interface Stream {
  /** Accepted publishes: event id and when the request started. */
  sent: { id: string; start: number }[];
  /** Publishes that failed (backend down): not counted as sent. */
  failed: number;
  stop(): Promise<void>;
}

/** Publishes one event every `everyMs` on `url` until stopped (pacing, not a wait for an event). */
export function startStream(url: string, base: { context: number; user: number; event: string; pathFilter?: string }, everyMs: number): Stream {
  const s: Stream = { sent: [], failed: 0, stop: async () => {
    stopped = true;
    await loop;
  } };
  let stopped = false;
  let n = 0;
  const loop = (async () => {
    while (!stopped) {
      const start = Date.now();
      try {
        const r = await fetch(`${url}/api/push`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${PUSH_TOKEN}` }, body: JSON.stringify({ ...base, data: n++ }), signal: AbortSignal.timeout(5000) });
        const j = (await r.json()) as { id?: string };
        if (r.status === 202 && j.id) s.sent.push({ id: j.id, start });
        else s.failed++;
      } catch {
        s.failed++;
      }
      const wait = everyMs - (Date.now() - start);
      if (wait > 0) await new Promise((res) => setTimeout(res, wait));
    }
  })();
  return s;
}

/** Publish on node 1, a connection on node 2 gets it exactly once (a later marker proves "once"). */
export async function crossNodeOnce(cluster: Cluster, user: { login: string; password: string; context: number; id: number }, path: string): Promise<void> {
  const [u1, u2] = cluster.urls;
  const l = await login(u1, user.login, user.password);
  const c = await connectTimed(u2, l, { path });
  try {
    const p = await push(u1, { context: user.context, user: user.id, event: 'x', data: 'once' });
    assert.equal(p.status, 202);
    const m = await push(u1, { context: user.context, user: user.id, event: 'marker', data: 0 });
    await waitFor('the marker on node 2', () => idsOf(c).includes(m.json.id), 5000);
    assert.deepEqual(idsOf(c), [p.json.id, m.json.id]);
    assert.deepEqual(c.frames[0], { name: 'x', args: ['once'], namespace: '/', id: p.json.id });
  } finally {
    c.ws.close();
  }
}
