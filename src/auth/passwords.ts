import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { hash as argonHash, verify as argonVerify, Algorithm } from '@node-rs/argon2';

/**
 * Dovecot-style scheme-prefixed password hashes:
 *   {ARGON2ID}$argon2id$v=19$m=…,t=…,p=…$salt$hash   (PHC string, as Dovecot writes it)
 *   {SCRYPT}$scrypt$ln=15,r=8,p=1$salt$hash          (PHC-style, base64 without padding)
 *   {PLAIN}text                                       (demos and tests only; logged as a warning at start-up)
 */
export type Scheme = 'ARGON2ID' | 'SCRYPT' | 'PLAIN';

const SCRYPT_RE = /^\{SCRYPT\}\$scrypt\$ln=(\d+),r=(\d+),p=(\d+)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/;

export function schemeOf(stored: string): Scheme | null {
  const m = /^\{(ARGON2ID|SCRYPT|PLAIN)\}/.exec(stored);
  return m ? (m[1] as Scheme) : null;
}

export async function hashPassword(password: string, scheme: Exclude<Scheme, 'PLAIN'> = 'ARGON2ID'): Promise<string> {
  if (scheme === 'ARGON2ID') return `{ARGON2ID}${await argonHash(password, { algorithm: Algorithm.Argon2id })}`;
  const salt = randomBytes(16);
  const ln = 15;
  const key = await scrypt(password, salt, 32, { N: 2 ** ln, r: 8, p: 1, maxmem: 64 * 1024 * 1024 });
  return `{SCRYPT}$scrypt$ln=${ln},r=8,p=1$${b64(salt)}$${b64(key)}`;
}

/**
 * The scheme and cost of a stored hash (`ARGON2ID m=19456,t=2,p=1`, `SCRYPT ln=15,r=8,p=1`, `PLAIN`),
 * or null when it is malformed: hashes with the same cost take the same time to verify.
 */
export function costOf(stored: string): string | null {
  switch (schemeOf(stored)) {
    case 'PLAIN':
      return 'PLAIN';
    case 'ARGON2ID': {
      const m = /^\{ARGON2ID\}\$argon2id\$v=\d+\$(m=\d+,t=\d+,p=\d+)\$/.exec(stored);
      return m ? `ARGON2ID ${m[1]}` : null;
    }
    case 'SCRYPT': {
      const m = SCRYPT_RE.exec(stored);
      return m ? `SCRYPT ln=${m[1]},r=${m[2]},p=${m[3]} len=${Buffer.from(m[5], 'base64').length}` : null;
    }
    default:
      return null;
  }
}

/** A hash of `password` with the scheme and cost of `cost` (as `costOf` names it). */
export async function hashWithCost(password: string, cost: string): Promise<string> {
  const argon = /^ARGON2ID m=(\d+),t=(\d+),p=(\d+)$/.exec(cost);
  if (argon) {
    return `{ARGON2ID}${await argonHash(password, { algorithm: Algorithm.Argon2id, memoryCost: Number(argon[1]), timeCost: Number(argon[2]), parallelism: Number(argon[3]) })}`;
  }
  const sc = /^SCRYPT ln=(\d+),r=(\d+),p=(\d+) len=(\d+)$/.exec(cost);
  if (sc) {
    const [ln, r, p, len] = [Number(sc[1]), Number(sc[2]), Number(sc[3]), Number(sc[4])];
    const salt = randomBytes(16);
    const key = await scrypt(password, salt, len, { N: 2 ** ln, r, p, maxmem: 256 * 2 ** ln * r + 1024 * 1024 });
    return `{SCRYPT}$scrypt$ln=${ln},r=${r},p=${p}$${b64(salt)}$${b64(key)}`;
  }
  return `{PLAIN}${password}`;
}

/** Constant-time where the scheme allows; a malformed stored hash never matches. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  switch (schemeOf(stored)) {
    case 'PLAIN':
      return safeEqual(Buffer.from(stored.slice('{PLAIN}'.length)), Buffer.from(password));
    case 'ARGON2ID':
      try {
        return await argonVerify(stored.slice('{ARGON2ID}'.length), password);
      } catch {
        return false;
      }
    case 'SCRYPT': {
      const m = SCRYPT_RE.exec(stored);
      if (!m) return false;
      const expected = Buffer.from(m[5], 'base64');
      const N = 2 ** Number(m[1]);
      const r = Number(m[2]);
      const key = await scrypt(password, Buffer.from(m[4], 'base64'), expected.length, { N, r, p: Number(m[3]), maxmem: 256 * N * r + 1024 * 1024 });
      return safeEqual(key, expected);
    }
    default:
      return false;
  }
}

function scrypt(password: string, salt: Buffer, len: number, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scryptCb(password, salt, len, opts, (err, key) => (err ? reject(err) : resolve(key))));
}

function safeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

function b64(b: Buffer): string {
  return b.toString('base64').replace(/=+$/, '');
}
