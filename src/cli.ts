import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { Command, Option } from 'commander';
import { hashPassword } from './auth/passwords.js';
import { checkConfig } from './config/check-config.js';
import { ConfigError } from './config/config-error.js';
import { loadConfig, typedSettings } from './config/load-config.js';
import { parseProperties } from './config/properties.js';
import { coerce, envNameOf, SCHEMA, specOf, type Settings } from './config/schema.js';
import type { SourcedValue } from './config/sourced.js';
import { callNode, Unreachable, type Answer, type Route } from './cli/reach-node.js';

/**
 * `npx tidings …`: serve, and the operator commands. Those reach the node on this machine over its
 * local admin socket (`tidings.admin.socket` of the config directory; file permissions are the
 * access control, no token), or a remote node over HTTP with `--url` and a token (`--token`, or
 * the config's and environment's tidings.admin.token / tidings.push.token).
 */
const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
const program = new Command('tidings').description('Clustered push-messaging server for webmail').version(VERSION, '-V, --version').showHelpAfterError();
const configOpt = () => new Option('--config <dir>', 'config directory').default(process.env.TIDINGS_CONFIG_DIR ?? 'config');
const urlOpt = () => new Option('--url <url>', 'a node elsewhere, over HTTP (default: this machine\'s node over its admin socket)').env('TIDINGS_URL');
const tokenOpt = () => new Option('--token <token>', 'bearer token for --url (default: from the config and environment)');

interface Reach {
  config: string;
  url?: string;
  token?: string;
}

// Loaded on demand: the server's modules would cost every operator command a few hundred ms.
program.command('serve').description('run one node').addOption(configOpt()).action(async (o: { config: string }) => (await import('./main.js')).serve(o.config));

program
  .command('hash-password')
  .description('print a password hash for directory.yml (reads the password from stdin)')
  .addOption(new Option('--scheme <scheme>', 'hash scheme').choices(['ARGON2ID', 'SCRYPT']).default('ARGON2ID'))
  .action(async (o: { scheme: 'ARGON2ID' | 'SCRYPT' }) => {
    const text = readFileSync(0, 'utf8').replace(/\r?\n$/, '');
    if (!text) fail('no password on stdin (try: echo -n secret | npx tidings hash-password)');
    console.log(await hashPassword(text, o.scheme));
  });

program
  .command('push')
  .description('publish an event to a user')
  .argument('<event>', 'event name, e.g. ox:mail:new')
  .argument('[json]', 'the event data as JSON')
  .requiredOption('--context <id>', 'context id')
  .requiredOption('--user <id>', 'user id')
  .option('--path-filter <filter>', 'only sockets whose path matches')
  .option('--key <key>', 'idempotency key')
  .addOption(configOpt())
  .addOption(urlOpt())
  .addOption(tokenOpt())
  .action(async (event: string, json: string | undefined, o: Reach & { context: string; user: string; pathFilter?: string; key?: string }) => {
    let data: unknown;
    try {
      data = json === undefined ? undefined : JSON.parse(json);
    } catch (e) {
      fail(`the data is not valid JSON: ${(e as Error).message}`);
    }
    const r = await call(o, 'tidings.push.token', 'POST', '/api/push', { context: o.context, user: o.user, event, data, pathFilter: o.pathFilter ?? null, key: o.key });
    console.log(`published ${(r as { id: string }).id}${(r as { duplicate: boolean }).duplicate ? ' (duplicate key: dropped)' : ''}`);
  });

const config = program.command('config').description('check the files; read and change context- and user-scope values at run time');
config
  .command('check')
  .description('validate a config directory (and the TIDINGS_* environment) like nginx -t: every error with file, line and key')
  .addOption(configOpt())
  .action((o: { config: string }) => {
    const errors = checkConfig(o.config);
    for (const e of errors) console.log(e.message);
    if (errors.length > 0) {
      console.log(`tidings: configuration in ${o.config} has ${errors.length} error${errors.length === 1 ? '' : 's'}`);
      process.exit(1);
    }
    console.log(`tidings: configuration in ${o.config} is valid`);
  });
config
  .command('get')
  .description('print the value in force and where it came from (scope, and file:line, env or store)')
  .argument('<key>')
  .option('--context <id>', 'context id (not needed for a server-wide key)')
  .option('--user <id>', 'user id (omit for the context scope)')
  .addOption(configOpt())
  .addOption(urlOpt())
  .addOption(tokenOpt())
  .action(async (key: string, o: Reach & { context?: string; user?: string }) => {
    if (o.context === undefined && specOf(key)?.cascade) fail(`${key} may differ per context and user: give --context C [--user U]`);
    if (o.context === undefined && o.user !== undefined) fail('--user needs --context');
    const q = new URLSearchParams({ key, ...(o.context !== undefined ? { context: o.context } : {}), ...(o.user ? { user: o.user } : {}) });
    const r = (await call(o, 'tidings.admin.token', 'GET', `/api/admin/config?${q}`)) as ConfigAnswer;
    console.log(`${key} = ${show(r.value)}`);
    console.log(`  from ${origin(r)}`);
  });
config
  .command('set')
  .description('store a run-time value for a context or user (wins over directory.yml at the same scope)')
  .argument('<key>')
  .argument('<value>')
  .requiredOption('--context <id>', 'context id')
  .option('--user <id>', 'user id (omit for the context scope)')
  .addOption(configOpt())
  .addOption(urlOpt())
  .addOption(tokenOpt())
  .action(async (key: string, value: string, o: Reach & { context: string; user?: string }) => {
    const r = (await call(o, 'tidings.admin.token', 'PUT', '/api/admin/config', { key, value, context: o.context, user: o.user ?? null })) as ConfigAnswer & { note?: string; warning?: string };
    console.log(`set ${key} = ${value} for ${o.user ? `user ${o.user}@${o.context}` : `context ${o.context}`}`);
    if (r.note) console.log(`  note: ${r.note}; in force: ${show(r.value)}`);
    if (r.warning) process.stderr.write(`tidings: warning: ${r.warning}\n`);
  });
config
  .command('unset')
  .description('remove a run-time value; the cascade then decides again')
  .argument('<key>')
  .requiredOption('--context <id>', 'context id')
  .option('--user <id>', 'user id (omit for the context scope)')
  .addOption(configOpt())
  .addOption(urlOpt())
  .addOption(tokenOpt())
  .action(async (key: string, o: Reach & { context: string; user?: string }) => {
    const q = new URLSearchParams({ key, context: o.context, ...(o.user ? { user: o.user } : {}) });
    const r = (await call(o, 'tidings.admin.token', 'DELETE', `/api/admin/config?${q}`)) as ConfigAnswer & { removed: boolean };
    console.log(r.removed ? `unset ${key}` : `${key} had no run-time value there`);
    // A leftover under a key outside the cascade has no value in force to show.
    if ('value' in r) console.log(`  now ${show(r.value)} from ${origin(r)}`);
  });

interface ConfigAnswer {
  value: unknown;
  scope: string;
  source: string;
}

function show(v: unknown): string {
  return Array.isArray(v) ? v.join(',') : String(v);
}

function origin(r: ConfigAnswer): string {
  return r.scope === 'default' ? 'the built-in default' : `${r.scope} scope (${r.source})`;
}

program
  .command('diag')
  .description('self-test through the balancer: WebSocket upgrade, buffering, idle timeout, forwarded client IP, proto and host')
  .argument('<url>', 'the address browsers use, e.g. https://mail.example.com')
  .option('--idle <seconds>', 'how long the idle check holds a request (above the proxy\'s read timeout)', '45')
  .option('--gap <ms>', 'gap between the two chunks of the streaming checks', '1500')
  .action(async (url: string, o: { idle: string; gap: string }) => {
    const idleSeconds = Number(o.idle);
    const gapMs = Number(o.gap);
    if (!Number.isInteger(idleSeconds) || idleSeconds < 0 || idleSeconds > 300) fail('--idle must be a number of seconds from 0 to 300');
    if (!Number.isInteger(gapMs) || gapMs < 100 || gapMs > 10_000) fail('--gap must be from 100 to 10000 ms');
    try {
      new URL(url);
    } catch {
      fail(`not a URL: ${url}`);
    }
    const { runDiag } = await import('./cli/diag.js');
    const problems = await runDiag(url, { idleSeconds, gapMs, print: (l) => console.log(l) });
    process.exit(problems === 0 ? 0 : 1);
  });

program
  .command('reload')
  .description('reload the configuration on every node')
  .addOption(configOpt())
  .addOption(urlOpt())
  .addOption(tokenOpt())
  .action(async (o: Reach) => {
    const r = (await call(o, 'tidings.admin.token', 'POST', '/api/admin/reload')) as { changed: string[]; restartNeeded: string[] };
    console.log(`reloaded; changed: ${r.changed.join(', ') || 'nothing'}${r.restartNeeded.length ? `; restart needed for: ${r.restartNeeded.join(', ')}` : ''}`);
  });

program
  .command('status')
  .description('cluster members, connections per node and transport')
  .addOption(configOpt())
  .addOption(urlOpt())
  .addOption(tokenOpt())
  .action(async (o: Reach) => {
    const r = (await call(o, 'tidings.admin.token', 'GET', '/api/admin/status')) as { nodeId: string; members: { nodeId: string; lastSeen: number; connections: number; byTransport: Record<string, number> }[] };
    console.log(`asked node ${r.nodeId}; ${r.members.length} member(s)`);
    for (const m of r.members) {
      const t = Object.entries(m.byTransport).map(([k, v]) => `${k}=${v}`).join(' ');
      console.log(`  ${m.nodeId}  connections=${m.connections}${t ? `  ${t}` : ''}  last seen ${new Date(m.lastSeen).toISOString()}`);
    }
  });

function settingsOf(dir: string): Settings {
  try {
    return loadConfig(dir).settings;
  } catch (e) {
    if (!(e instanceof ConfigError)) fail(String(e));
    // An operator who just broke a file still needs `tidings reload` to reach the node (which then
    // names the problem and keeps its old configuration): fall back to what the .properties hold.
    process.stderr.write(`tidings: warning: ${e.message}\n`);
    return clientSettings(dir);
  }
}

/** A path as short as it can be said from here, for messages. */
function shown(p: string): string {
  const r = relative(process.cwd(), p);
  return r.length < p.length && !r.startsWith('..') ? r : p;
}

/**
 * With --url: that node over HTTP with a token. Otherwise this machine's node over the admin socket
 * of the config directory; when none answers there but a token is configured, the node's HTTP
 * address from the same config (a node that runs without a socket, or an older one).
 */
async function call(o: Reach, tokenKey: 'tidings.admin.token' | 'tidings.push.token', method: string, path: string, body?: unknown): Promise<unknown> {
  const settings = settingsOf(o.config);
  const token = o.token ?? settings[tokenKey];
  const host = settings['tidings.http.host'] === '0.0.0.0' ? '127.0.0.1' : settings['tidings.http.host'].includes(':') ? `[${settings['tidings.http.host']}]` : settings['tidings.http.host'];
  const http: Route = { kind: 'http', url: (o.url ?? `http://${host}:${settings['tidings.http.port']}`).replace(/\/$/, ''), token };
  const socket = settings['tidings.admin.socket'];
  let answer: Answer;
  try {
    if (o.url !== undefined || !socket) answer = await callNode(http, method, path, body);
    else {
      const route: Route = { kind: 'socket', path: resolve(o.config, socket) };
      try {
        answer = await callNode(route, method, path, body);
      } catch (e) {
        if (!(e instanceof Unreachable) || !token) {
          if (e instanceof Unreachable) {
            fail(`no tidings node answers on the admin socket ${shown(route.path)} (${e.code === 'ENOENT' ? 'no such socket' : e.code ?? e.message}): is one running with --config ${o.config}? For a node elsewhere use --url URL --token TOKEN`);
          }
          throw e;
        }
        answer = await callNode(http, method, path, body);
      }
    }
  } catch (e) {
    if (e instanceof Unreachable) fail(e.message);
    throw e;
  }
  if (answer.status < 200 || answer.status > 299) {
    const err = (answer.json as { error?: { code: string; message: string } } | undefined)?.error;
    fail(err ? `${err.code}: ${err.message}` : `HTTP ${answer.status}: ${answer.text}`);
  }
  return answer.json;
}

/** Server settings from the readable lines of the .properties files and the environment, skipping bad ones. */
function clientSettings(dir: string): Settings {
  const server = new Map<string, SourcedValue>();
  const keep = (key: string, sv: SourcedValue) => {
    const spec = specOf(key);
    if (spec && coerce(spec, sv.value).ok) server.set(key, sv);
  };
  let names: string[] = [];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.properties')).sort();
  } catch {
    // No directory: defaults and environment.
  }
  for (const name of names) {
    try {
      for (const e of parseProperties(readFileSync(join(dir, name), 'utf8'), name)) keep(e.key, { value: e.value, file: name, line: e.line });
    } catch {
      // A file that cannot be read at all contributes nothing.
    }
  }
  for (const key of Object.keys(SCHEMA)) {
    const v = process.env[envNameOf(key)];
    if (v !== undefined) keep(key, { value: v, file: `env:${envNameOf(key)}`, line: null });
  }
  return typedSettings(server);
}

function fail(msg: string): never {
  process.stderr.write(`tidings: ${msg}\n`);
  process.exit(1);
}

await program.parseAsync(process.argv);
