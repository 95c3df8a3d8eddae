import { it } from 'node:test';
import assert from 'node:assert/strict';
import { endpointOf } from '../../src/http/dispatcher.js';
import { ownerOfSid, newSid } from '../../src/sockets/engine-sid.js';

it('one dispatcher decides which endpoint a path belongs to', () => {
  const cases: [string, ReturnType<typeof endpointOf>][] = [
    ['/socket.io/', 'socket.io'],
    ['/socket.io/?EIO=4&transport=polling', 'socket.io'],
    ['/socket.io/appsuite/?EIO=4', 'socket.io'],
    ['/socket.io', 'socket.io'],
    ['/socket.io?EIO=4', 'socket.io'],
    ['/socket.iox/', null],
    ['/websockets/push?session=s', 'websockets'],
    ['/websockets', 'websockets'],
    ['/websockets?session=s', 'websockets'],
    ['/websocketsx', null],
    ['/api/push', null],
    ['/', null],
  ];
  for (const [url, want] of cases) assert.equal(endpointOf(url), want, url);
});

it('an Engine.IO sid names the node that issued it', () => {
  for (const node of ['n1-1234', 'node-ab12cd34', 'ünïcode node']) assert.equal(ownerOfSid(newSid(node)), node);
  assert.equal(ownerOfSid('Ab12_-xyzAb12_-xyzAb'), null, "engine.io's own ids name no node");
  assert.notEqual(newSid('n'), newSid('n'));
});
