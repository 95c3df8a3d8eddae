import { startRedis, type RedisServer } from '../helpers/redis-servers.js';
import { deliverySemantics } from './delivery-semantics.js';
import { startCluster } from './fixture.js';

deliverySemantics('three tidings processes on a standalone redis-server', async (props) => {
  let redis: RedisServer | undefined = await startRedis();
  try {
    const cluster = await startCluster(redis.url, props);
    return {
      ...cluster,
      stop: async () => {
        await cluster.stop();
        await redis?.stop();
        redis = undefined;
      },
    };
  } catch (err) {
    await redis.stop();
    throw err;
  }
});
