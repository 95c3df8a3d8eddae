import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server as HttpServer } from 'node:http';
import type { Socket as NetSocket } from 'node:net';
import pino from 'pino';
import { Server as IoServer, type Socket as IoSocket } from 'socket.io';
import { io as ioClient } from 'socket.io-client';
import WebSocket, { WebSocketServer } from 'ws';
import type { LocalConnection } from '../../src/delivery/local-connection.js';
import { LocalHub } from '../../src/delivery/local-hub.js';
import { DedupeWindow } from '../../src/delivery/dedupe-window.js';
import { Publisher } from '../../src/delivery/publisher.js';
import { MemoryPublishLookup } from '../../src/adapters/memory/memory-publish-lookup.js';
import type { UserKey } from '../../src/domain/types.js';
import { Metrics } from '../../src/metrics.js';
import { EngineWriteHold, WsWriteHold } from '../../src/sockets/write-hold.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/wait.js';

/** Counts the writes a TCP socket hands to the kernel: each `_writeGeneric` is one write or writev. */
function countWrites(tcp: NetSocket): { n: number } {
  const count = { n: 0 };
  const s = tcp as unknown as { _writeGeneric: (...a: unknown[]) => unknown };
  const orig = s._writeGeneric.bind(tcp);
  s._writeGeneric = (...a: unknown[]) => {
    count.n++;
    return orig(...a);
  };
  return count;
}

async function listen(): Promise<{ http: HttpServer; url: string }> {
  const port = await freePort();
  const http = createServer();
  await new Promise<void>((r) => http.listen(port, '127.0.0.1', r));
  return { http, url: `http://127.0.0.1:${port}` };
}

/** Lets every pending write callback run, so that a transport that waits for one is writable again. */
const settle = () => new Promise((r) => setImmediate(r));

describe('EngineWriteHold', () => {
  it('the events emitted while held leave a Socket.IO WebSocket in one write (without: one write each)', async () => {
    const { http, url } = await listen();
    const io = new IoServer(http, { transports: ['websocket'] });
    const serverSide = new Promise<IoSocket>((r) => io.once('connection', r));
    const client = ioClient(url, { transports: ['websocket'], reconnection: false, forceNew: true });
    const got: number[] = [];
    client.on('ev', (i: number) => got.push(i));
    try {
      const socket = await serverSide;
      const transport = socket.conn.transport as unknown as { socket: { _socket: NetSocket } };
      const writes = countWrites(transport.socket._socket);
      await settle();

      // Without a hold, Engine.IO writes one packet, then waits for its callback to send the rest.
      writes.n = 0;
      for (let i = 0; i < 5; i++) socket.emit('ev', i);
      await waitFor('5 events', () => got.length === 5);
      assert.ok(writes.n > 1, `without a hold 5 events took ${writes.n} write(s)`);
      await settle();

      const hold = new EngineWriteHold(socket.conn);
      writes.n = 0;
      hold.hold();
      for (let i = 5; i < 10; i++) socket.emit('ev', i);
      assert.equal(writes.n, 0, 'nothing is written while held');
      hold.release();
      await waitFor('10 events', () => got.length === 10);
      assert.equal(writes.n, 1, 'the held events leave in one write');
      assert.deepEqual(got, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    } finally {
      client.close();
      await new Promise((r) => io.close(r));
    }
  });
});

describe('WsWriteHold', () => {
  it('the frames sent while held leave a plain WebSocket in one write (without: one write each)', async () => {
    const { http, url } = await listen();
    const wss = new WebSocketServer({ server: http, perMessageDeflate: false });
    const serverSide = new Promise<WebSocket>((r) => wss.once('connection', r));
    const client = new WebSocket(url.replace('http', 'ws'));
    const got: string[] = [];
    client.on('message', (d) => got.push(String(d)));
    try {
      const ws = await serverSide;
      const writes = countWrites((ws as unknown as { _socket: NetSocket })._socket);

      for (let i = 0; i < 5; i++) ws.send(`${i}`);
      await waitFor('5 frames', () => got.length === 5);
      assert.equal(writes.n, 5, 'without a hold, one write per frame');

      const hold = new WsWriteHold(ws);
      writes.n = 0;
      hold.hold();
      for (let i = 5; i < 10; i++) ws.send(`${i}`);
      assert.ok(ws.bufferedAmount > 0, 'the held frames count in bufferedAmount (the backlog bound sees them)');
      hold.release();
      await waitFor('10 frames', () => got.length === 10);
      assert.equal(writes.n, 1, 'the held frames leave in one write');
      assert.deepEqual(got, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    } finally {
      client.terminate();
      for (const c of wss.clients) c.terminate();
      await new Promise((r) => wss.close(r));
      await new Promise((r) => http.close(r));
    }
  });
});

describe('Publisher.receive holds each user\'s sockets for a batch of several events', () => {
  it('holds, sends every payload, releases once; a single payload is sent without a hold', () => {
    const log: string[] = [];
    const hub = new LocalHub();
    const conn = (id: string, user: string): LocalConnection => ({
      id, user: user as UserKey, sessionId: `s-${id}`, sessionExpiresAt: 0, path: '/p', transport: 'websocket',
      send: (e) => log.push(`${id} send ${e.id}`),
      hold: () => log.push(`${id} hold`),
      release: () => log.push(`${id} release`),
      close: () => undefined,
    });
    hub.add(conn('a1', '3@1'));
    hub.add(conn('a2', '3@1'));
    hub.add(conn('b', '4@1'));
    const publisher = new Publisher({
      nodeId: 'n', hub, lookup: new MemoryPublishLookup(), historyLimits: () => ({ size: 100, ttlMs: 600_000 }), backendUp: () => true, fallbackDedupe: new DedupeWindow(), remote: { offer: () => undefined },
      dedupeTtlMs: () => 1000, metrics: new Metrics(), log: pino({ level: 'silent' }),
    });
    const ev = (id: string) => JSON.stringify({ name: 'e', args: [], namespace: '/', id });
    publisher.receive([
      { user: '3@1' as UserKey, pathFilter: null, payloads: [ev('1'), ev('2'), ev('3')], sourceTokens: [null, null, null] },
      { user: '4@1' as UserKey, pathFilter: null, payloads: [ev('4')], sourceTokens: [null] },
    ]);
    assert.deepEqual(log, [
      'a1 hold', 'a2 hold',
      'a1 send 1', 'a2 send 1', 'a1 send 2', 'a2 send 2', 'a1 send 3', 'a2 send 3',
      'a1 release', 'a2 release',
      'b send 4',
    ]);
  });
});
