/** Issue 9 item 10, the HTTP part on its own: requests in flight finish, new ones get 503 JSON. */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import { HttpDrain } from '../../src/http/drain.js';
import { waitFor } from '../helpers/wait.js';

it('a draining server answers what is in flight and refuses new requests with 503 TIDINGS_SHUTTING_DOWN', async () => {
  const app = Fastify();
  const drain = new HttpDrain(app);
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  app.get('/slow', async () => {
    await held;
    return { ok: true };
  });
  app.get('/health/live', async () => ({ live: true }));
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  try {
    const slow = fetch(`${url}/slow`);
    await waitFor('the request to be in flight', () => drain.inFlight === 1);
    let told = 0;
    drain.onStart(() => told++);
    drain.start();
    drain.start();
    assert.equal(told, 1, 'holders of long requests are told once');
    assert.ok(drain.draining);
    const refused = await fetch(`${url}/slow`);
    assert.equal(refused.status, 503);
    assert.equal(refused.headers.get('connection'), 'close');
    assert.deepEqual(await refused.json(), { error: { code: 'TIDINGS_SHUTTING_DOWN', message: 'This node is shutting down' } });
    assert.equal((await fetch(`${url}/health/live`)).status, 200, 'health still answers');
    let idle: boolean | null = null;
    const done = drain.idle(Date.now() + 10_000).then((v) => (idle = v));
    assert.equal(idle, null);
    release();
    const answer = await slow;
    assert.equal(answer.status, 200);
    assert.deepEqual(await answer.json(), { ok: true });
    await done;
    assert.equal(idle, true);
  } finally {
    await app.close();
  }
});
