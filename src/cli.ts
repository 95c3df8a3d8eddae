import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { hashPassword } from './auth/passwords.js';
import { ConfigError } from './config/config-error.js';
import { loadConfig, typedSettings } from './config/load-config.js';
import { parseProperties } from './config/properties.js';
import { coerce, envNameOf, SCHEMA, specOf, type Settings } from './config/schema.js';
import type { SourcedValue } from './config/sourced.js';

/** `npx tidings …`: serve, and the operator commands, which are clients of a running node's HTTP API. */
const program = new Command('tidings').description('Clustered push-messaging server for webmail').showHelpAfterError();
const configOpt = () => new Option('--config <dir>', 'config directory').default(process.env.TIDINGS_CONFIG_DIR ?? 'config');
const urlOpt = () => new Option('--url <url>', 'node to talk to (default: http://<tidings.http.host>:<tidings.http.port> from the config)');

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
  .action(async (event: string, json: string | undefined, o: { context: string; user: string; pathFilter?: string; key?: string; config: string; url?: string }) => {
    let data: unknown;
    try {
      data = json === undefined ? undefined : JSON.parse(json);
    } catch (e) {
      fail(`the data is not valid JSON: ${(e as Error).message}`);
    }
    const { url, settings } = target(o);
    const r = await call('POST', `${url}/api/push`, settings['tidings.push.token'], { context: o.context, user: o.user, event, data, pathFilter: o.pathFilter ?? null, key: o.key });
    console.log(`published ${(r as { id: string }).id}${(r as { duplicate: boolean }).duplicate ? ' (duplicate key: dropped)' : ''}`);
  });

const config = program.command('config').description('read and change context- and user-scope values at run time');
config
  .command('get')
  .description('print the value in force and where it came from (scope, and file:line, env or store)')
  .argument('<key>')
  .requiredOption('--context <id>', 'context id')
  .option('--user <id>', 'user id (omit for the context scope)')
  .addOption(configOpt())
  .addOption(urlOpt())
  .action(async (key: string, o: { context: string; user?: string; config: string; url?: string }) => {
    const { url, settings } = target(o);
    const q = new URLSearchParams({ key, context: o.context, ...(o.user ? { user: o.user } : {}) });
    const r = (await call('GET', `${url}/api/admin/config?${q}`, settings['tidings.admin.token'])) as ConfigAnswer;
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
  .action(async (key: string, value: string, o: { context: string; user?: string; config: string; url?: string }) => {
    const { url, settings } = target(o);
    const r = (await call('PUT', `${url}/api/admin/config`, settings['tidings.admin.token'], { key, value, context: o.context, user: o.user ?? null })) as ConfigAnswer & { note?: string };
    console.log(`set ${key} = ${value} for ${o.user ? `user ${o.user}@${o.context}` : `context ${o.context}`}`);
    if (r.note) console.log(`  note: ${r.note}; in force: ${show(r.value)}`);
  });
config
  .command('unset')
  .description('remove a run-time value; the cascade then decides again')
  .argument('<key>')
  .requiredOption('--context <id>', 'context id')
  .option('--user <id>', 'user id (omit for the context scope)')
  .addOption(configOpt())
  .addOption(urlOpt())
  .action(async (key: string, o: { context: string; user?: string; config: string; url?: string }) => {
    const { url, settings } = target(o);
    const q = new URLSearchParams({ key, context: o.context, ...(o.user ? { user: o.user } : {}) });
    const r = (await call('DELETE', `${url}/api/admin/config?${q}`, settings['tidings.admin.token'])) as ConfigAnswer & { removed: boolean };
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
  .command('reload')
  .description('reload the configuration on every node')
  .addOption(configOpt())
  .addOption(urlOpt())
  .action(async (o: { config: string; url?: string }) => {
    const { url, settings } = target(o);
    const r = (await call('POST', `${url}/api/admin/reload`, settings['tidings.admin.token'])) as { changed: string[]; restartNeeded: string[] };
    console.log(`reloaded; changed: ${r.changed.join(', ') || 'nothing'}${r.restartNeeded.length ? `; restart needed for: ${r.restartNeeded.join(', ')}` : ''}`);
  });

program
  .command('status')
  .description('cluster members, connections per node and transport')
  .addOption(configOpt())
  .addOption(urlOpt())
  .action(async (o: { config: string; url?: string }) => {
    const { url, settings } = target(o);
    const r = (await call('GET', `${url}/api/admin/status`, settings['tidings.admin.token'])) as { nodeId: string; members: { nodeId: string; lastSeen: number; connections: number; byTransport: Record<string, number> }[] };
    console.log(`asked node ${r.nodeId}; ${r.members.length} member(s)`);
    for (const m of r.members) {
      const t = Object.entries(m.byTransport).map(([k, v]) => `${k}=${v}`).join(' ');
      console.log(`  ${m.nodeId}  connections=${m.connections}${t ? `  ${t}` : ''}  last seen ${new Date(m.lastSeen).toISOString()}`);
    }
  });

function target(o: { config: string; url?: string }) {
  let settings: Settings;
  try {
    settings = loadConfig(o.config).settings;
  } catch (e) {
    if (!(e instanceof ConfigError)) fail(String(e));
    // An operator who just broke a file still needs `tidings reload` to reach the node (which then
    // names the problem and keeps its old configuration): fall back to what the .properties hold.
    settings = clientSettings(o.config);
    process.stderr.write(`tidings: warning: ${e.message}\n`);
  }
  const host = settings['tidings.http.host'] === '0.0.0.0' ? '127.0.0.1' : settings['tidings.http.host'];
  return { url: (o.url ?? `http://${host}:${settings['tidings.http.port']}`).replace(/\/$/, ''), settings };
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

async function call(method: string, url: string, token: string, body?: unknown): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    fail(`cannot reach ${new URL(url).origin}: ${(e as Error).cause ?? (e as Error).message}`);
  }
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  if (!res.ok) {
    const err = (json as { error?: { code: string; message: string } }).error;
    fail(err ? `${err.code}: ${err.message}` : `HTTP ${res.status}: ${text}`);
  }
  return json;
}

function fail(msg: string): never {
  process.stderr.write(`tidings: ${msg}\n`);
  process.exit(1);
}

await program.parseAsync(process.argv);
