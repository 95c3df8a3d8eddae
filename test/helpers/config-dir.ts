import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export const DEMO_DIRECTORY = `contexts:
  - id: 1
    name: example.com
    tags: [premium]
  - id: 2
    name: other.org
users:
  - { id: 3, context: 1, login: alice@example.com, password: "{PLAIN}alice-pw" }
  - { id: 4, context: 1, login: bob@example.com, password: "{PLAIN}bob-pw" }
  - { id: 3, context: 2, login: carol@other.org, password: "{PLAIN}carol-pw" }
  - { id: 5, context: 1, login: dave@example.com, password: "{PLAIN}dave-pw", mailEnabled: false }
`;

export const PUSH_TOKEN = 'test-push-token';
export const ADMIN_TOKEN = 'test-admin-token';

/** A fresh config directory: `properties` go to tidings.properties, `files` are written as given. */
export function makeConfigDir(opts: { properties?: Record<string, string | number | boolean>; directory?: string; files?: Record<string, string> } = {}): { dir: string; write(path: string, text: string): void; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'tidings-cfg-'));
  const write = (path: string, text: string) => {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  };
  const props = {
    'tidings.http.port': 0,
    'tidings.push.token': PUSH_TOKEN,
    'tidings.admin.token': ADMIN_TOKEN,
    'tidings.config.watch': false,
    ...opts.properties,
  };
  write('tidings.properties', Object.entries(props).map(([k, v]) => `${k}=${v}`).join('\n') + '\n');
  write('directory.yml', opts.directory ?? DEMO_DIRECTORY);
  for (const [p, t] of Object.entries(opts.files ?? {})) write(p, t);
  return { dir, write, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
