import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { buildHttp } from '../../src/http/app.js';
import { LazyRequestLogger } from '../../src/http/lazy-request-logger.js';

describe('request loggers', () => {
  it('a request that logs nothing builds no child logger; the first log line builds it, with its bindings', () => {
    const lines: Record<string, unknown>[] = [];
    const parent = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
    let children = 0;
    const child = parent.child.bind(parent);
    (parent as unknown as { child: typeof parent.child }).child = ((b, o) => {
      children++;
      return child(b, o);
    }) as typeof parent.child;
    const quiet = new LazyRequestLogger(parent, { reqId: 'req-1' }, {});
    assert.equal(quiet.level, 'info');
    assert.equal(children, 0, 'no child for a request that does not log');
    const loud = new LazyRequestLogger(parent, { reqId: 'req-2' }, {});
    loud.error({ code: 'X' }, 'failed');
    loud.warn('again');
    assert.equal(children, 1, 'one child, made on the first line');
    assert.deepEqual(lines.map((l) => [l.reqId, l.msg, l.code]), [['req-2', 'failed', 'X'], ['req-2', 'again', undefined]]);
  });

  it('a request that fails with a 500 is still logged with its request id', async () => {
    const lines: Record<string, unknown>[] = [];
    const log = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
    const { app } = buildHttp({ log, maxBodyBytes: 1024, headersTimeoutMs: 10_000 });
    app.get('/boom', () => {
      throw new Error('kaputt');
    });
    app.get('/fine', () => ({ ok: true }));
    try {
      assert.equal((await app.inject({ method: 'GET', url: '/fine' })).statusCode, 200);
      assert.equal(lines.length, 0, 'request logging stays off');
      const r = await app.inject({ method: 'GET', url: '/boom' });
      assert.equal(r.statusCode, 500);
      const failed = lines.find((l) => l.msg === 'request failed');
      assert.ok(failed, `no 'request failed' line in ${JSON.stringify(lines)}`);
      assert.equal(typeof failed.reqId, 'string');
      assert.equal(failed.component, 'http');
    } finally {
      await app.close();
    }
  });
});
