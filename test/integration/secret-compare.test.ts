import { it } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { connectPlainWs, login, startNode } from '../helpers/node.js';

// This file replaces crypto.timingSafeEqual for its whole process (each test file runs in its own).
const crypto = createRequire(import.meta.url)('node:crypto') as typeof import('node:crypto');

it('the session secret cookie is compared in constant time, in the gate and at logout', async () => {
  const real = crypto.timingSafeEqual;
  let calls = 0;
  crypto.timingSafeEqual = ((a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView) => {
    calls++;
    return real(a, b);
  }) as typeof real;
  syncBuiltinESMExports();
  const n = await startNode();
  try {
    const alice = await login(n.url, 'alice@example.com', 'alice-pw');
    let before = calls;
    const c = await connectPlainWs(n.url, alice);
    assert.ok(calls > before, 'the gate compared the secret without timingSafeEqual');
    c.ws.close();
    const wrong = await connectPlainWs(n.url, alice, { cookie: 'tidings-secret=wrong' }).then(() => 'open', (e) => e.body.error.code);
    assert.equal(wrong, 'TIDINGS_SECRET_WRONG');
    before = calls;
    const out = await fetch(`${n.url}/api/logout?session=${alice.session}`, { method: 'POST', headers: { cookie: alice.cookie } });
    assert.equal(out.status, 200);
    assert.ok(calls > before, 'logout compared the secret without timingSafeEqual');
  } finally {
    crypto.timingSafeEqual = real;
    syncBuiltinESMExports();
    await n.stop();
  }
});
