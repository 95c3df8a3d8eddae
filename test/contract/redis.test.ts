import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { RedisKeys } from '../../src/adapters/redis/keys.js';
import { parseRedisUrl, redactRedisUrl } from '../../src/adapters/redis/redis-url.js';
import { startRedis, type RedisServer } from '../helpers/redis-servers.js';
import { portContract, redisSubjects } from './ports.contract.js';
import { eventLogContract, redisEventLogSubjects } from './event-log.contract.js';

let server: RedisServer | undefined;
after(() => server?.stop());

portContract('redis standalone', async () => {
  server = await startRedis();
  return redisSubjects(server.url, 'std');
});

eventLogContract('redis standalone', async () => {
  server ??= await startRedis();
  return redisEventLogSubjects(server.url, 'std');
});

describe('tidings.redis.url parsing', () => {
  it('reads the standalone forms', () => {
    assert.deepEqual(parseRedisUrl('redis://127.0.0.1:7000/2'), { kind: 'standalone', host: '127.0.0.1', port: 7000, tls: false, db: 2 });
    assert.deepEqual(parseRedisUrl('rediss://:s3cr%40t@redis.example:6380'), { kind: 'standalone', host: 'redis.example', port: 6380, tls: true, db: 0, username: undefined, password: 's3cr@t' });
    assert.deepEqual(parseRedisUrl('redis://app:pw@[::1]'), { kind: 'standalone', host: '::1', port: 6379, tls: false, db: 0, username: 'app', password: 'pw' });
  });

  it('reads the Sentinel form', () => {
    assert.deepEqual(parseRedisUrl('redis+sentinel://:pw@10.0.0.1:26379,10.0.0.2:26380/mymaster?db=3'), {
      kind: 'sentinel',
      sentinels: [{ host: '10.0.0.1', port: 26379 }, { host: '10.0.0.2', port: 26380 }],
      name: 'mymaster',
      db: 3,
      username: undefined,
      password: 'pw',
    });
  });

  it('reads both Cluster seed-list forms, a single bare host:port included', () => {
    const nodes = [{ host: 'h1', port: 7000 }, { host: 'h2', port: 7001 }];
    assert.deepEqual(parseRedisUrl('h1:7000,h2:7001'), { kind: 'cluster', nodes, tls: false });
    assert.deepEqual(parseRedisUrl('redis://h1:7000, redis://h2:7001'), { kind: 'cluster', nodes, tls: false });
    assert.deepEqual(parseRedisUrl('h1:7000'), { kind: 'cluster', nodes: [nodes[0]], tls: false });
  });

  it('rejects bad urls with the expected forms and without the password', () => {
    for (const bad of ['', 'http://h:1', 'redis+sentinel://:hunter2@h:1', 'redis://:hunter2@h:99999', 'h1', 'redis://:hunter2@h:1?x=1', 'redis+sentinel://h:1/m?tls=1']) {
      assert.throws(() => parseRedisUrl(bad), (err: Error) => {
        assert.match(err.message, /expected redis:\/\//);
        assert.doesNotMatch(err.message, /hunter2/);
        return true;
      }, bad);
    }
    assert.equal(redactRedisUrl('redis+sentinel://u:pw@h:1,h:2/m'), 'redis+sentinel://u:***@h:1,h:2/m');
  });
});

describe('key layout', () => {
  it('keeps every key of one user, and of one node, in one hash-tag slot', () => {
    const k = new RedisKeys('tidings:');
    const tag = (key: string) => /\{([^}]*)\}/.exec(key)?.[1];
    assert.deepEqual(new Set([k.userConnections('3@1'), k.userNodes('3@1'), k.userDedupe('3@1', 'x'), k.userHistory('3@1'), k.userHistoryMeta('3@1')].map(tag)), new Set(['u:3@1']));
    assert.deepEqual(new Set([k.nodeAlive('n1'), k.nodeUsers('n1'), k.nodeReapLock('n1'), k.nodeInbox('n1')].map(tag)), new Set(['n:n1']));
    assert.ok(k.session('abc').startsWith('tidings:'));
    assert.throws(() => new RedisKeys('bad{'), /must not contain/);
  });
});
