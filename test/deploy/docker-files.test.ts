import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { coerce, envNameOf, SCHEMA, specOf, type KeySpec } from '../../src/config/schema.js';
import { SHIPPED, SHIPPED_UPSTREAMS } from '../helpers/proxies.js';

/**
 * No Docker engine on these machines: the compose file and the Dockerfile are checked for what they
 * must say. That the nginx config they mount works is proven by the proxy tests (test/proxy/).
 */
const root = new URL('../../../', import.meta.url).pathname;
const read = (p: string) => readFileSync(join(root, p), 'utf8');
const compose = parse(read('docker-compose.yml'), { merge: true }) as { services: Record<string, any>; networks?: Record<string, any> };
const NODES = ['tidings1', 'tidings2', 'tidings3'];
const KEY_BY_ENV = new Map(Object.keys(SCHEMA).map((k) => [envNameOf(k), k]));

/** Compose's `${VAR:-default}` / `${VAR:?message}` as the value the container would get in a test run. */
function interpolate(v: unknown): string {
  return String(v).replace(/\$\{([A-Z0-9_]+)(?::?[-?]([^}]*))?\}/g, (_m, name: string, rest: string | undefined) => process.env[name] ?? (rest !== undefined && !/^set /.test(rest) ? rest : 'x'));
}

describe('docker-compose.yml', () => {
  it('runs Redis, three tidings nodes and nginx', () => {
    assert.deepEqual(Object.keys(compose.services).sort(), ['nginx', 'redis', ...NODES].sort());
    assert.match(compose.services.redis.image, /^redis:/);
  });

  it('every TIDINGS_* variable it sets is a schema key, with a value that key accepts', () => {
    for (const name of NODES) {
      const env = compose.services[name].environment as Record<string, unknown>;
      assert.ok(env && typeof env === 'object' && !Array.isArray(env), `${name}: environment as a map`);
      for (const [variable, value] of Object.entries(env)) {
        const key = KEY_BY_ENV.get(variable);
        assert.ok(key, `${name}: ${variable} is no tidings key (the schema has no ${variable.toLowerCase().replace(/_/g, '.')})`);
        const c = coerce(specOf(key) as KeySpec, interpolate(value));
        assert.ok(c.ok, `${name}: ${variable}=${String(value)}: expected ${c.ok ? '' : c.expected}`);
      }
    }
  });

  it('gives each node its own id, one Redis, and a listener nginx can reach', () => {
    const ids = NODES.map((n) => compose.services[n].environment.TIDINGS_NODE_ID);
    assert.deepEqual(ids, NODES);
    for (const n of NODES) {
      const env = compose.services[n].environment;
      assert.equal(env.TIDINGS_REDIS_URL, 'redis://redis:6379');
      assert.equal(env.TIDINGS_HTTP_HOST, '0.0.0.0');
      assert.equal(compose.services[n].depends_on.redis.condition, 'service_healthy');
      // the address the other nodes relay polling requests to: its own service name
      assert.equal(env.TIDINGS_CLUSTER_ADVERTISEURL, `http://${n}:${env.TIDINGS_HTTP_PORT}`);
    }
  });

  it('mounts the shipped nginx config, whose upstreams are the three node services on their port', () => {
    const nginx = compose.services.nginx;
    assert.ok((nginx.volumes as string[]).some((v) => v.startsWith(`./${SHIPPED.nginx}:/etc/nginx/nginx.conf`)), JSON.stringify(nginx.volumes));
    const conf = read(SHIPPED.nginx);
    SHIPPED_UPSTREAMS.forEach((u, i) => {
      assert.ok(conf.includes(`server ${u};`), `nginx upstream ${u}`);
      const [host, port] = u.split(':');
      assert.equal(host, NODES[i]);
      assert.equal(compose.services[host].environment.TIDINGS_HTTP_PORT, port);
    });
  });

  it('believes X-Forwarded-For from nginx only: trustedProxies is nginx\'s fixed address', () => {
    const address = compose.services.nginx.networks.tidings.ipv4_address;
    for (const n of NODES) assert.equal(compose.services[n].environment.TIDINGS_HTTP_TRUSTEDPROXIES, address);
    const subnet = compose.networks?.tidings?.ipam?.config?.[0]?.subnet as string;
    assert.ok(subnet && address.startsWith(subnet.split('.').slice(0, 3).join('.') + '.'), `${address} in ${subnet}`);
  });

  it('has health checks: nodes on /health/ready, Redis by PING, nginx, and nginx waits for healthy nodes', () => {
    for (const n of NODES) assert.match(compose.services[n].healthcheck.test.join(' '), /\/health\/ready/);
    assert.match(compose.services.redis.healthcheck.test.join(' '), /redis-cli ping/);
    assert.ok(compose.services.nginx.healthcheck.test.length > 0);
    for (const n of NODES) assert.equal(compose.services.nginx.depends_on[n].condition, 'service_healthy');
  });

  it('never carries a secret in the file: tokens come from the environment', () => {
    for (const n of NODES) {
      const env = compose.services[n].environment;
      for (const key of ['TIDINGS_PUSH_TOKEN', 'TIDINGS_ADMIN_TOKEN']) assert.match(String(env[key]), /^\$\{[A-Z_]+:\?/);
    }
  });
});

describe('Dockerfile', () => {
  const text = read('Dockerfile');
  const stages = text.split(/^FROM /m).slice(1).map((s) => 'FROM ' + s);
  const final = stages[stages.length - 1];

  it('is multi-stage on a supported Node LTS base image', () => {
    assert.ok(stages.length >= 2, 'at least a build and a runtime stage');
    for (const s of stages) assert.match(s, /^FROM node:(22|24)[-.\w]*/, s.split('\n')[0]);
  });

  it('runs as a non-root user', () => {
    const user = /^USER (\S+)/m.exec(final);
    assert.ok(user, 'USER in the final stage');
    assert.notEqual(user[1], 'root');
    assert.notEqual(user[1], '0');
  });

  it('ships production dependencies only', () => {
    const from = /^COPY --from=(\S+) \/app\/node_modules/m.exec(final);
    assert.ok(from, 'node_modules copied from a stage');
    const stage = stages.find((s) => new RegExp(`^FROM \\S+ AS ${from[1]}$`, 'm').test(s));
    assert.ok(stage, `stage ${from[1]}`);
    assert.match(stage, /npm ci[^\n]*--omit=dev/);
    assert.doesNotMatch(final, /npm (ci|install)(?![^\n]*--omit=dev)/);
  });

  it('checks its health on /health/ready and listens where nginx expects it', () => {
    assert.match(final, /^HEALTHCHECK [\s\S]*\/health\/ready/m);
    assert.match(final, /TIDINGS_HTTP_HOST=0\.0\.0\.0/);
    assert.match(final, /^EXPOSE 8009$/m);
  });

  it('copies what the server reads at run time, and .dockerignore keeps local builds out', () => {
    for (const p of ['dist/src', 'bin', 'web', 'config', 'package.json']) assert.match(final, new RegExp(`^COPY .*\\b${p.replace('/', '\\/')}\\b`, 'm'), p);
    assert.ok(existsSync(join(root, '.dockerignore')));
    const ignore = read('.dockerignore').split('\n');
    for (const p of ['node_modules', 'dist']) assert.ok(ignore.includes(p), p);
  });
});
