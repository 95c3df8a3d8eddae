import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { ADMIN_TOKEN } from '../helpers/config-dir.js';
import { DIRECTORY } from './fixture.js';
import { connectPlainWs, connectSocketIo, login, startNode, type Login, type TestNode } from '../helpers/node.js';
import { rawRequest, upgradeHead } from '../helpers/raw-http.js';
import { startRedis, type RedisServer } from '../helpers/redis-servers.js';
import { waitFor } from '../helpers/wait.js';


/** Two in-process nodes on one real redis-server: a slot taken on one counts on the other. */
describe('connection slots and transports on Redis', () => {
  let redis: RedisServer;
  let a: TestNode;
  let b: TestNode;
  let alice: Login;
  let admits = { started: 0, settled: 0 };
  before(async () => {
    redis = await startRedis();
    const props = { 'tidings.redis.url': redis.url, 'tidings.connections.maxPerUser': 2 };
    a = await startNode({ directory: DIRECTORY, properties: { ...props, 'tidings.node.id': `sa-${process.pid}` } });
    b = await startNode({ directory: DIRECTORY, properties: { ...props, 'tidings.node.id': `sb-${process.pid}` } });
    alice = await login(a.url, 'alice@example.com', 'alice-pw');
    // Counts the admissions node a makes, so a test can wait until they are all answered.
    const reg = a.node.backends.registry as unknown as { admit(...x: unknown[]): Promise<unknown> };
    const admit = reg.admit.bind(reg);
    reg.admit = async (...x: unknown[]) => {
      admits.started++;
      try {
        return await admit(...x);
      } finally {
        admits.settled++;
      }
    };
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
    await redis?.stop();
  });

  // Each test has a user of its own, so that one test's leak cannot fail another.
  const count = (user = '3@1') => b.node.backends.registry.countFor(user);
  const ws = `/websockets/x?session=`;

  it('no refused upgrade keeps a slot, cluster-wide', async () => {
    const kinds: [Record<string, string | null>, string, string][] = [
      [{ 'Sec-WebSocket-Key': 'garbage' }, 'GET', ws],
      [{ 'Sec-WebSocket-Key': null }, 'GET', ws],
      [{ 'Sec-WebSocket-Version': '99' }, 'GET', ws],
      [{ Upgrade: 'h2c' }, 'GET', ws],
      [{ 'Content-Length': '0' }, 'POST', ws],
      [{ 'Sec-WebSocket-Protocol': 'bad proto' }, 'GET', ws],
      [{ 'Sec-WebSocket-Key': 'garbage' }, 'GET', '/socket.io/?EIO=4&transport=websocket&session='],
    ];
    const answers: string[] = [];
    for (const [over, method, path] of kinds) {
      for (let i = 0; i < 3; i++) {
        const r = await rawRequest(a.url, upgradeHead(a.url, path + alice.session, { Cookie: alice.cookie, ...over }, method));
        answers.push(`${JSON.stringify(over)} ${method}: ${r.status} ${r.json?.error?.code ?? r.body}`);
      }
    }
    assert.equal(await count(), 0, 'slots kept after refusals');
    for (const line of answers) assert.match(line, / 4\d\d TIDINGS_[A-Z_]+$/);
    // Two connections (the cap) still fit, on either node.
    const one = await connectPlainWs(a.url, alice);
    const two = await connectPlainWs(b.url, alice);
    one.ws.close();
    two.ws.close();
    await waitFor('both slots to be free', async () => (await count()) === 0);
  });

  for (const [how, who, key] of [['end', 'bob@example.com', '4@1'], ['destroy', 'carol@other.org', '3@2']] as const) {
    it(`a client that hangs up (${how}) right after sending its upgrade request keeps no slot`, async () => {
      const alice = await login(a.url, who, `${who.split('@')[0]}-pw`);
      const { hostname, port } = new URL(a.url);
      const started = admits.started;
      for (const path of [ws + alice.session, `/socket.io/?EIO=4&transport=websocket&session=${alice.session}`]) {
        for (let i = 0; i < 4; i++) {
          await new Promise<void>((resolve, reject) => {
            const s = connect({ host: hostname, port: Number(port) }, () => {
              s.write(`${upgradeHead(a.url, path, { Cookie: alice.cookie })}\r\n\r\n`, () => {
                if (how === 'end') s.end();
                else s.destroy();
                resolve();
              });
            });
            s.on('error', reject);
          });
        }
      }
      await waitFor('every admission to be answered', () => admits.started >= started + 8 && admits.settled === admits.started);
      await waitFor('the slots to be released', async () => (await count(key)) === 0, 5000);
    });
  }

  it('tidings status counts an upgraded Socket.IO connection as websocket', async () => {
    const erin = await login(a.url, 'erin@example.com', 'erin-pw');
    const c = await connectSocketIo(a.url, erin, { transports: ['polling', 'websocket'] });
    try {
      await waitFor('the client to upgrade', () => c.io.engine.transport.name === 'websocket');
      const mine = async () => {
        const r = (await (await fetch(`${b.url}/api/admin/status`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json()) as any;
        return (r.members as { nodeId: string; byTransport: Record<string, number> }[]).find((m) => m.nodeId === a.node.nodeId)?.byTransport;
      };
      // Another node reads it from the registry's heartbeat, so it shows within a beat or two.
      await waitFor('status to count it as websocket', async () => (await mine())?.websocket === 1);
      assert.deepEqual(await mine(), { websocket: 1 });
    } finally {
      c.close();
    }
  });
});
