import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { hashPassword } from './auth/passwords.js';
import { ConfigError } from './config/config-error.js';
import { loadConfig } from './config/load-config.js';
import { serve } from './main.js';

/** `npx tidings …`: serve, and the operator commands, which are clients of a running node's HTTP API. */
const program = new Command('tidings').description('Clustered push-messaging server for webmail').showHelpAfterError();
const configOpt = () => new Option('--config <dir>', 'config directory').default(process.env.TIDINGS_CONFIG_DIR ?? 'config');
const urlOpt = () => new Option('--url <url>', 'node to talk to (default: http://<tidings.http.host>:<tidings.http.port> from the config)');

program.command('serve').description('run one node').addOption(configOpt()).action((o: { config: string }) => serve(o.config));

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
  .argument('<key>')
  .requiredOption('--context <id>')
  .option('--user <id>')
  .addOption(configOpt())
  .addOption(urlOpt())
  .action(async (key: string, o: { context: string; user?: string; config: string; url?: string }) => {
    const { url, settings } = target(o);
    const q = new URLSearchParams({ key, context: o.context, ...(o.user ? { user: o.user } : {}) });
    const r = (await call('GET', `${url}/api/admin/config?${q}`, settings['tidings.admin.token'])) as { value: unknown; scope: string; source: string };
    console.log(`${key} = ${Array.isArray(r.value) ? r.value.join(',') : String(r.value)}`);
    console.log(`  from ${r.scope} scope (${r.source})`);
  });
config
  .command('set')
  .argument('<key>')
  .argument('<value>')
  .requiredOption('--context <id>')
  .option('--user <id>')
  .addOption(configOpt())
  .addOption(urlOpt())
  .action(async (key: string, value: string, o: { context: string; user?: string; config: string; url?: string }) => {
    const { url, settings } = target(o);
    await call('PUT', `${url}/api/admin/config`, settings['tidings.admin.token'], { key, value, context: o.context, user: o.user ?? null });
    console.log(`set ${key} = ${value} for ${o.user ? `user ${o.user}@${o.context}` : `context ${o.context}`}`);
  });
config
  .command('unset')
  .argument('<key>')
  .requiredOption('--context <id>')
  .option('--user <id>')
  .addOption(configOpt())
  .addOption(urlOpt())
  .action(async (key: string, o: { context: string; user?: string; config: string; url?: string }) => {
    const { url, settings } = target(o);
    const q = new URLSearchParams({ key, context: o.context, ...(o.user ? { user: o.user } : {}) });
    const r = (await call('DELETE', `${url}/api/admin/config?${q}`, settings['tidings.admin.token'])) as { removed: boolean };
    console.log(r.removed ? `unset ${key}` : `${key} had no run-time value there`);
  });

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
  let settings;
  try {
    settings = loadConfig(o.config).settings;
  } catch (e) {
    fail(e instanceof ConfigError ? `configuration error: ${e.message}` : String(e));
  }
  const host = settings['tidings.http.host'] === '0.0.0.0' ? '127.0.0.1' : settings['tidings.http.host'];
  return { url: (o.url ?? `http://${host}:${settings['tidings.http.port']}`).replace(/\/$/, ''), settings };
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
