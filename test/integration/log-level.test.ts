/**
 * Issue 9 item 12: `tidings.log.level` is validated like every other key (file, line, key), a bad value
 * never kills a running node nor sticks, and a reload reaches the logger of every component.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config/load-config.js';
import { ConfigError } from '../../src/config/config-error.js';
import { createLogger } from '../../src/log.js';
import { ADMIN_TOKEN, makeConfigDir, PUSH_TOKEN } from '../helpers/config-dir.js';
import { connectSocketIo, login, startNode, type LogLine } from '../helpers/node.js';
import { startProcessNode, MAIN, run } from '../helpers/process-node.js';
import { waitFor } from '../helpers/wait.js';

const props = (level: string, extra = '') => `tidings.http.port=0\ntidings.push.token=${PUSH_TOKEN}\ntidings.admin.token=${ADMIN_TOKEN}\ntidings.config.watch=false\n${extra}tidings.log.level=${level}\n`;

/** A destination that keeps every JSON line, parsed. */
function sink(lines: LogLine[]): NodeJS.WritableStream {
  return { write: (s: string) => lines.push(JSON.parse(s) as LogLine) > 0 } as unknown as NodeJS.WritableStream;
}

describe('tidings.log.level', () => {
  it('a misspelt level is a config error naming file, line and key', () => {
    const cfg = makeConfigDir();
    try {
      cfg.write('tidings.properties', props('inof'));
      assert.throws(() => loadConfig(cfg.dir, {}), (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        assert.equal(e.file, 'tidings.properties');
        assert.equal(e.line, 5);
        assert.equal(e.key, 'tidings.log.level');
        assert.match(e.reason, /one of fatal, error, warn, info, debug, trace, silent/);
        return true;
      });
      assert.throws(() => loadConfig(cfg.dir, { TIDINGS_LOG_LEVEL: 'verbose' }), /env:TIDINGS_LOG_LEVEL: tidings.log.level: expected one of/);
      cfg.write('tidings.properties', props(' DEBUG'));
      assert.equal(loadConfig(cfg.dir, {}).settings['tidings.log.level'], 'debug');
    } finally {
      cfg.remove();
    }
  });

  it('a reload with a misspelt level is refused with file, line and key (422), and the old level stays', async () => {
    const lines: LogLine[] = [];
    const log = createLogger({ level: 'info', destination: sink(lines) });
    const n = await startNode({ log });
    try {
      n.write('tidings.properties', props('inof'));
      const res = await fetch(`${n.url}/api/admin/reload`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      const body = (await res.json()) as any;
      assert.equal(res.status, 422);
      assert.equal(body.error.code, 'TIDINGS_CONFIG_INVALID');
      assert.deepEqual(body.error.details, { file: 'tidings.properties', line: 5, key: 'tidings.log.level' });
      assert.equal(n.node.config.settings['tidings.log.level'], 'info');
      assert.equal(n.node.log.level, 'info');
      assert.equal((await fetch(`${n.url}/health/live`)).status, 200);
    } finally {
      await n.stop();
    }
  });

  it('a reload changes the level of every component\'s logger, both ways', async () => {
    const lines: LogLine[] = [];
    const log = createLogger({ level: 'info', destination: sink(lines) });
    const n = await startNode({ log });
    const reload = async (level: string) => {
      n.write('tidings.properties', props(level));
      const r = await n.node.reloadCluster();
      assert.ok(r.ok, JSON.stringify(r));
    };
    try {
      const alice = await login(n.url, 'alice@example.com', 'alice-pw');
      // info: no debug line from the sockets component
      (await connectSocketIo(n.url, alice)).close();
      assert.equal(lines.filter((l) => l.level < 30).length, 0);

      await reload('debug');
      (await connectSocketIo(n.url, alice)).close();
      await waitFor('a debug line from the sockets component', () => lines.some((l) => l.level === 20 && l.component === 'sockets'));
      assert.ok(n.node.app.log.level === 'debug', 'the HTTP (fastify) logger follows');

      await reload('warn');
      const mark = lines.length;
      // The config component's "configuration reloaded" is info: it must not show at warn.
      await reload('warn');
      (await connectSocketIo(n.url, alice)).close();
      assert.deepEqual(lines.slice(mark).filter((l) => l.level < 40).map((l) => `${String(l.component)}: ${l.msg}`), []);
      assert.ok(n.node.app.log.level === 'warn');
    } finally {
      await n.stop();
    }
  });

  it('a bad level at start-up is a one-line config error with file, line and key, exit 2', async () => {
    const cfg = makeConfigDir();
    try {
      cfg.write('tidings.properties', props('inof'));
      const r = await run(process.execPath, [MAIN, 'serve', '--config', cfg.dir]);
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stderr.trim(), "tidings: configuration error: tidings.properties:5: tidings.log.level: expected one of fatal, error, warn, info, debug, trace, silent, got 'inof'");
    } finally {
      cfg.remove();
    }
  });

  it('a misspelt level written while the node runs (file watcher) keeps it running on the old level', async () => {
    const cfg = makeConfigDir();
    cfg.write('tidings.properties', props('info').replace('tidings.config.watch=false', 'tidings.config.watch=true'));
    const p = await startProcessNode(cfg.dir);
    try {
      cfg.write('tidings.properties', props('inof').replace('tidings.config.watch=false', 'tidings.config.watch=true'));
      const refused = await waitFor('the reload to be refused', () => p.lines.find((l) => typeof l.msg === 'string' && l.msg.startsWith('configuration not reloaded')));
      assert.equal(refused.key, 'tidings.log.level');
      assert.equal(refused.line, 5);
      assert.equal((await fetch(`${p.url}/health/live`)).status, 200);
      assert.equal(p.child.exitCode, null, 'the node is still running');
      assert.ok(!p.lines.some((l) => typeof l.msg === 'string' && l.msg.startsWith('configuration reloaded')));
    } finally {
      p.kill('SIGTERM');
      await p.exited;
      cfg.remove();
    }
  });
});
