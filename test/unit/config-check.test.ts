/**
 * Issue 14 item 2: `tidings config check` validates a whole directory like `nginx -t`: every error
 * (file, line, key, why), not the first; exit 1 when there is any. The node's loader still stops
 * at the first.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { checkConfig } from '../../src/config/check-config.js';
import { ConfigError } from '../../src/config/config-error.js';
import { loadConfig } from '../../src/config/load-config.js';
import { makeConfigDir } from '../helpers/config-dir.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Six problems in five files; each stage of loading meets at least one. */
const BROKEN = {
  properties: { 'tidings.http.port': 'eighty', 'tidings.htp.host': 'x' },
  files: {
    'websockets.properties': 'com.openexchange.websockets.enabled=maybe\n',
    'bad.properties': 'tidings.x=\\u12G4\n',
    'contextSets/a.yml': 'good:\n  withTags: premium\n  tidings.connections.maxPerUser: 4\nbroken:\n  withTags: "premium &"\nserverwide:\n  withTags: premium\n  tidings.http.port: 1\n',
    'meta/m.yml': 'tidings.connections.maxPerUser: {final: reseller}\n',
  },
  directory: 'contexts:\n  - id: 1\n    name: a\nusers:\n  - { id: 3, context: 9, login: a, password: "{PLAIN}x" }\n  - { id: 4, context: 1, login: b, password: "nohash" }\n  - { id: 5, context: 1, login: c, password: "{PLAIN}y", config: { tidings.connections.maxPerUser: lots } }\n',
};

const EXPECTED = [
  /^bad\.properties:1: tidings\.x: malformed \\uXXXX escape/,
  /^contextSets\/a\.yml:5: broken: block 'broken': invalid withTags/,
  /^contextSets\/a\.yml:8: tidings\.http\.port: block 'serverwide': this key is server-wide only/,
  /^directory\.yml:5: context: no context with id 9$/,
  /^directory\.yml:6: password: password must start with \{ARGON2ID\}, \{SCRYPT\} or \{PLAIN\}$/,
  /^directory\.yml:7: tidings\.connections\.maxPerUser: user 5@1: expected an integer/,
  /^meta\/m\.yml:1: tidings\.connections\.maxPerUser: unknown scope 'reseller'/,
  /^tidings\.properties:1: tidings\.http\.port: expected an integer from 0 to 65535, got 'eighty'$/,
  /^tidings\.properties:5: tidings\.htp\.host: unknown key/,
  /^websockets\.properties:1: com\.openexchange\.websockets\.enabled: expected a boolean/,
];

it('reports every error of the directory, in file and line order, each once', () => {
  const cfg = makeConfigDir(BROKEN);
  try {
    const errors = checkConfig(cfg.dir, {});
    const lines = errors.map((e) => e.message);
    assert.equal(lines.length, EXPECTED.length, lines.join('\n'));
    EXPECTED.forEach((re, i) => assert.match(lines[i], re));
    // The node itself still refuses at the first one.
    assert.throws(() => loadConfig(cfg.dir, {}), ConfigError);
  } finally {
    cfg.remove();
  }
});

it('also what the node would only meet at start: an unreadable CA file, an overlong socket path', () => {
  const cfg = makeConfigDir({ properties: { 'tidings.redis.tlsCaFile': 'no-such-ca.pem', 'tidings.admin.socket': `run/${'x'.repeat(120)}.sock` } });
  try {
    const lines = checkConfig(cfg.dir, {}).map((e) => e.message);
    assert.equal(lines.length, 2, lines.join('\n'));
    assert.match(lines[0], /^tidings\.properties:\d+: tidings\.redis\.tlsCaFile: cannot read \S+no-such-ca\.pem: ENOENT$/);
    assert.match(lines[1], /^tidings\.properties:\d+: tidings\.admin\.socket: \S+ is longer than the 107 bytes/);
  } finally {
    cfg.remove();
  }
});

it('includes the environment the node would read, and is empty for the shipped config', () => {
  assert.deepEqual(checkConfig(`${ROOT}config`, {}).map((e) => e.message), []);
  assert.deepEqual(checkConfig(`${ROOT}config`, { TIDINGS_HTTP_PORT: 'x' }).map((e) => e.message), ["env:TIDINGS_HTTP_PORT: tidings.http.port: expected an integer from 0 to 65535, got 'x'"]);
  assert.deepEqual(checkConfig('/nonexistent-tidings-dir', {}).map((e) => e.message), ['/nonexistent-tidings-dir: config directory does not exist']);
});

it('`tidings config check` prints them all and exits 1; 0 and "valid" for a good directory', async () => {
  const cfg = makeConfigDir(BROKEN);
  const run = (dir: string) => new Promise<{ code: number; stdout: string }>((resolve) => {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TIDINGS_')) env[k] = v;
    execFile(process.execPath, [`${ROOT}bin/tidings.js`, 'config', 'check', '--config', dir], { env }, (err, stdout) => resolve({ code: err ? Number(err.code) : 0, stdout }));
  });
  try {
    const bad = await run(cfg.dir);
    assert.equal(bad.code, 1);
    const lines = bad.stdout.trimEnd().split('\n');
    EXPECTED.forEach((re, i) => assert.match(lines[i], re));
    assert.equal(lines.at(-1), `tidings: configuration in ${cfg.dir} has ${EXPECTED.length} errors`);
    const good = await run(`${ROOT}config`);
    assert.deepEqual(good, { code: 0, stdout: `tidings: configuration in ${ROOT}config is valid\n` });
  } finally {
    cfg.remove();
  }
});

it('the keys added since: a bad trusted-proxy CIDR, a publicUrl that is no origin, a log level typo, each with its line', () => {
  const cfg = makeConfigDir({ properties: {
    'tidings.http.trustedProxies': '10.0.0.0/8, 192.168.0.0/33',
    'tidings.http.publicUrl': 'mail.example.com',
    'tidings.log.level': 'infoo',
  } });
  try {
    const lines = checkConfig(cfg.dir, {}).map((e) => e.message);
    assert.equal(lines.length, 3, lines.join('\n'));
    assert.match(lines[0], /^tidings\.properties:\d+: tidings\.http\.trustedProxies: .*192\.168\.0\.0\/33/);
    assert.match(lines[1], /^tidings\.properties:\d+: tidings\.http\.publicUrl: .*mail\.example\.com/);
    assert.match(lines[2], /^tidings\.properties:\d+: tidings\.log\.level: .*infoo/);
  } finally {
    cfg.remove();
  }
});
