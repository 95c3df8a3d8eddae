import { SCHEMA, type KeySpec } from './schema.js';

/** The text of config/tidings.properties: every tidings.* key, documented, with its default commented out. */
export function renderTidingsProperties(): string {
  const lines = [
    '# tidings server settings. Every key is listed with its built-in default, commented out;',
    '# uncomment a line to change it. Any key can also be set from the environment: upper-case,',
    '# dots to underscores (tidings.redis.url -> TIDINGS_REDIS_URL); the environment wins over files.',
    '# "reloadable" keys take effect on reload (SIGHUP, `npx tidings reload`, or editing this file);',
    '# the others need a restart. "per user" keys may also be set per context set, context or user.',
  ];
  let group = '';
  for (const [key, spec] of Object.entries(SCHEMA) as [string, KeySpec][]) {
    if (!key.startsWith('tidings.')) continue;
    const g = key.split('.')[1];
    if (g !== group) {
      lines.push('', `# --- ${g} ---`);
      group = g;
    }
    const tags = [spec.type === 'secret' ? 'secret' : spec.type, spec.reloadable ? 'reloadable' : 'restart', ...(spec.cascade ? ['per user'] : [])];
    lines.push(`# ${spec.doc} (${tags.join(', ')})`);
    lines.push(`#${key}=${Array.isArray(spec.default) ? spec.default.join(',') : String(spec.default)}`);
  }
  return lines.join('\n') + '\n';
}
