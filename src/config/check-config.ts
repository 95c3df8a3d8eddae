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
