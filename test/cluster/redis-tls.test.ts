import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { makeConfigDir } from '../helpers/config-dir.js';
import { startProcessNode } from '../helpers/process-node.js';
import { startTlsRedis, type TlsRedisServer } from '../helpers/redis-servers.js';
import { crossNodeOnce, DIRECTORY, members, startCluster, type Cluster } from './fixture.js';

describe('cluster over rediss:// (a TLS-only redis-server with a private CA)', () => {
  let redis: TlsRedisServer | undefined;
  let cluster: Cluster | undefined;

  before(async () => {
    redis = await startTlsRedis();
    // The CA file sits in each node's config directory and is named relative to it.
    cluster = await startCluster(redis.url, { 'tidings.redis.tlsCaFile': 'redis-ca.pem' }, 't', { 'redis-ca.pem': await readFile(redis.caFile, 'utf8') });
  });
  after(async () => {
    await cluster?.stop();
    await redis?.stop();
  });

  it('all three nodes join and deliver across nodes exactly once', async () => {
    assert.deepEqual((await members(cluster!.urls[1])).sort(), [...cluster!.ids].sort());
    await crossNodeOnce(cluster!, { login: 'alice@example.com', password: 'alice-pw', context: 1, id: 3 }, '/tls');
  });

  it('a CA file that cannot be read stops the start-up with the key and the path', async () => {
    const d = makeConfigDir({ directory: DIRECTORY, properties: { 'tidings.redis.url': redis!.url, 'tidings.redis.tlsCaFile': 'missing-ca.pem' } });
    try {
      const err = await startProcessNode(d.dir).then(
        (n) => (n.kill('SIGKILL'), null),
        (e: Error) => e,
      );
      assert.ok(err, 'the node must not start');
      assert.match(err.message, /tidings\.redis\.tlsCaFile: cannot read .*missing-ca\.pem: ENOENT/);
    } finally {
      d.remove();
    }
  });
});
