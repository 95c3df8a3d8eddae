import { randomBytes } from 'node:crypto';
import type { Directory, DirUser } from '../directory/directory.js';
import { costOf, hashWithCost, verifyPassword } from './passwords.js';

export type Verify = (password: string, stored: string) => Promise<boolean>;

/**
 * Login and password → user. An unknown login is verified too, against a dummy hash of the scheme
 * and cost most of the directory's users have, so its answer takes as long as a known login's
 * wrong password: timing does not tell which logins exist.
 */
export class CredentialCheck {
  readonly #verify: Verify;
  /** One dummy per loaded directory: a reload that changes the hashes' cost gets a new one. */
  readonly #dummies = new WeakMap<Directory, Promise<string>>();

  constructor(verify: Verify = verifyPassword) {
    this.#verify = verify;
  }

  async check(directory: Directory, login: string, password: string): Promise<DirUser | null> {
    const user = directory.byLogin.get(login.toLowerCase());
    const dummy = this.dummyFor(directory);
    const ok = await this.#verify(password, user?.password ?? (await dummy));
    return user && ok ? user : null;
  }

  /** The hash an unknown login is verified against; made once per directory, in the background. */
  dummyFor(directory: Directory): Promise<string> {
    let d = this.#dummies.get(directory);
    if (!d) {
      d = hashWithCost(randomBytes(18).toString('base64url'), commonCost(directory));
      // Started for known logins too, which never await it: a failure must not go unhandled there.
      d.catch(() => undefined);
      this.#dummies.set(directory, d);
    }
    return d;
  }
}

/** The cost most users' hashes have; PLAIN only when no user has a real hash. */
function commonCost(directory: Directory): string {
  const counts = new Map<string, number>();
  for (const u of directory.users.values()) {
    const c = costOf(u.password);
    if (c !== null && c !== 'PLAIN') counts.set(c, (counts.get(c) ?? 0) + 1);
  }
  let best = 'PLAIN';
  let n = 0;
  for (const [c, k] of counts) if (k > n) [best, n] = [c, k];
  return best;
}
