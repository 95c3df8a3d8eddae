import { accessSync, constants } from 'node:fs';
import { resolve } from 'node:path';
import { validateCascadeInput } from './cascade/resolver.js';
import { ConfigError } from './config-error.js';
import { loadConfig } from './load-config.js';

/**
 * `tidings config check`: every problem of a config directory (and of the TIDINGS_* environment,
 * which the node would read too), not just the first, in file and line order.
 */
export function checkConfig(dir: string, env: NodeJS.ProcessEnv = process.env): ConfigError[] {
  const errors: ConfigError[] = [];
  const loaded = loadConfig(dir, env, errors);
  errors.push(...validateCascadeInput({
    server: loaded.server,
    contexts: loaded.directory.contexts,
    users: loaded.directory.users,
    contextSets: loaded.contextSets,
    meta: loaded.meta,
    stored: [],
  }));
  // What the node would only find when it starts: files it must read, a socket path it must bind.
  const at = (key: string, reason: string) => {
    const sv = loaded.server.get(key);
    errors.push(new ConfigError(sv?.file ?? 'built-in default', sv?.line ?? null, key, reason));
  };
  const ca = loaded.settings['tidings.redis.tlsCaFile'];
  if (ca) {
    try {
      accessSync(resolve(dir, ca), constants.R_OK);
    } catch (e) {
      at('tidings.redis.tlsCaFile', `cannot read ${resolve(dir, ca)}: ${(e as NodeJS.ErrnoException).code}`);
    }
  }
  const sock = loaded.settings['tidings.admin.socket'];
  if (sock && Buffer.byteLength(resolve(dir, sock)) > 107) at('tidings.admin.socket', `${resolve(dir, sock)} is longer than the 107 bytes a UNIX socket path may have`);
  // The typed settings and the cascade check both look at server values: one report per place.
  const seen = new Set<string>();
  const unique = errors.filter((e) => {
    const at = `${e.file}\0${e.line}\0${e.key}`;
    if (seen.has(at)) return false;
    seen.add(at);
    return true;
  });
  return unique.sort((a, b) => (a.file === b.file ? (a.line ?? 0) - (b.line ?? 0) : a.file < b.file ? -1 : 1));
}
