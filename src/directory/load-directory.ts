import { isScalar, isSeq, type Pair } from 'yaml';
import { ConfigError } from '../config/config-error.js';
import type { SourcedValue } from '../config/sourced.js';
import { keyText, YamlSource } from '../config/yaml-source.js';
import type { DirContext, Directory, DirUser } from './directory.js';
import { userKey } from '../domain/types.js';

const SCHEMES = /^\{(ARGON2ID|SCRYPT|PLAIN)\}/;

/**
 * Parses `directory.yml`; every problem is a ConfigError with the file and line. Without `errors`
 * the first one is thrown; with it, each bad entry's problem is appended and the entry skipped.
 */
export function parseDirectory(text: string, file: string, errors?: ConfigError[]): Directory {
  const y = new YamlSource(text, file);
  const each = (nodes: unknown[], parse: (node: unknown) => void): void => {
    for (const node of nodes) {
      try {
        parse(node);
      } catch (e) {
        if (!errors || !(e instanceof ConfigError)) throw e;
        errors.push(e);
      }
    }
  };
  const contexts = new Map<number, DirContext>();
  const users = new Map<string, DirUser>();
  const byLogin = new Map<string, DirUser>();
  each(y.pairs(y.root, 'directory.yml'), (top) => {
    const k = keyText(top as Pair);
    if (k !== 'contexts' && k !== 'users') throw y.error((top as Pair).key, k, "unknown top-level key (expected 'contexts' or 'users')");
  });
  const section = (name: string): unknown[] => {
    const pair = y.pairs(y.root, 'directory.yml').find((p) => keyText(p) === name);
    if (!pair || pair.value === null) return [];
    if (!isSeq(pair.value)) {
      const e = y.error(pair.value, name, `'${name}' must be a list`);
      if (!errors) throw e;
      errors.push(e);
      return [];
    }
    return pair.value.items;
  };

  each(section('contexts'), (node) => {
    const f = fields(y, node, 'context', ['id', 'name', 'tags', 'config']);
    const id = y.intValue(req(y, node, f, 'id', 'context'), 'id', 'context id');
    if (contexts.has(id)) throw y.error(f.get('id'), 'id', `duplicate context id ${id}`);
    const name = f.has('name') ? y.scalarText(f.get('name'), 'name', 'context name') : String(id);
    contexts.set(id, Object.freeze({ id, name, tags: Object.freeze(y.stringList(f.get('tags'), 'tags', 'a tag')), config: configOf(y, f.get('config')) }));
  });

  each(section('users'), (node) => {
    const f = fields(y, node, 'user', ['id', 'context', 'login', 'password', 'mailEnabled', 'config']);
    const id = y.intValue(req(y, node, f, 'id', 'user'), 'id', 'user id');
    const contextId = y.intValue(req(y, node, f, 'context', 'user'), 'context', 'user context');
    if (!contexts.has(contextId)) throw y.error(f.get('context'), 'context', `no context with id ${contextId}`);
    const key = userKey({ userId: id, contextId });
    if (users.has(key)) throw y.error(f.get('id'), 'id', `duplicate user ${key}`);
    const login = y.scalarText(req(y, node, f, 'login', 'user'), 'login', 'login');
    if (byLogin.has(login.toLowerCase())) throw y.error(f.get('login'), 'login', `duplicate login ${login}`);
    const password = y.scalarText(req(y, node, f, 'password', 'user'), 'password', 'password');
    if (!SCHEMES.test(password)) throw y.error(f.get('password'), 'password', 'password must start with {ARGON2ID}, {SCRYPT} or {PLAIN}');
    let mailEnabled = true;
    if (f.has('mailEnabled')) {
      const n = f.get('mailEnabled');
      if (!isScalar(n) || typeof n.value !== 'boolean') throw y.error(n, 'mailEnabled', 'mailEnabled must be true or false');
      mailEnabled = n.value;
    }
    const user: DirUser = Object.freeze({ id, contextId, key, login, password, mailEnabled, config: configOf(y, f.get('config')) });
    users.set(key, user);
    byLogin.set(login.toLowerCase(), user);
  });
  return Object.freeze({ contexts, users, byLogin });
}

function fields(y: YamlSource, node: unknown, what: string, allowed: string[]): Map<string, unknown> {
  const m = new Map<string, unknown>();
  for (const p of y.pairs(node, `a ${what} entry`)) {
    const k = keyText(p);
    if (!allowed.includes(k)) throw y.error(p.key, k, `unknown ${what} field (expected one of ${allowed.join(', ')})`);
    m.set(k, p.value);
  }
  return m;
}

function req(y: YamlSource, node: unknown, f: Map<string, unknown>, key: string, what: string): unknown {
  if (!f.has(key)) throw y.error(node, key, `${what} entry is missing '${key}'`);
  return f.get(key);
}

function configOf(y: YamlSource, node: unknown): ReadonlyMap<string, SourcedValue> {
  const m = new Map<string, SourcedValue>();
  for (const p of y.pairs(node, "'config'")) {
    const k = keyText(p);
    const value = y.scalarText(p.value, k, `config value of ${k}`);
    m.set(k, Object.freeze({ value, file: y.file, line: y.lineOf(p.key) }));
  }
  return m;
}

