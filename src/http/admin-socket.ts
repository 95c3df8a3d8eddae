import { chmodSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { TidingsError } from '../errors.js';

/**
 * The local admin socket, as `doveadm` has one: a UNIX socket whose file permissions (0600, or
 * 0660 with group access, owned by the server's user) are the access control, so the CLI on the
 * same machine needs no token. It serves the same fastify routes as the TCP listener, but only
 * the operator's ones; a request that came in on it is marked, and the token checks let it pass.
 */
const local = new WeakSet<IncomingMessage>();

/** Routes the socket serves: the admin API, and publishing (anyone who may reload the cluster may push). */
const SERVED = /^\/api\/(admin\/|push(\?|$))/;

export function isLocalAdminRequest(req: IncomingMessage): boolean {
  return local.has(req);
}

/** A clear refusal the node's start turns into one line: the path is held by a live node or is no socket. */
export class AdminSocketError extends Error {
  constructor(readonly path: string, message: string) {
    super(message);
    this.name = 'AdminSocketError';
  }
}

export interface AdminSocket {
  readonly path: string;
  close(): Promise<void>;
}

/**
 * Listens on `path`. A socket file left by a node that was killed is removed; one a live node
 * answers on is refused, as is a path that is not a socket (never delete an operator's file).
 */
export async function openAdminSocket(opts: { path: string; groupAccess: boolean; handler: (req: IncomingMessage, res: ServerResponse) => void }): Promise<AdminSocket> {
  const { path } = opts;
  if (Buffer.byteLength(path) > 107) throw new AdminSocketError(path, `the admin socket path ${path} is longer than the 107 bytes a UNIX socket path may have; set tidings.admin.socket to a shorter one`);
  const unusable = (e: unknown): AdminSocketError => {
    const code = (e as NodeJS.ErrnoException).code;
    return new AdminSocketError(path, `cannot create the admin socket ${path} (${code ?? (e as Error).message}); set tidings.admin.socket to a path the node may write, e.g. /run/tidings/admin.sock, or empty for none`);
  };
  try {
    // A folder made here lets in only who may use the socket (the group must traverse it for 0660);
    // an existing one is the operator's to set.
    mkdirSync(dirname(path), { recursive: true, mode: opts.groupAccess ? 0o750 : 0o700 });
  } catch (e) {
    throw unusable(e);
  }
  await clearStale(path);
  const server: Server = createServer((req, res) => {
    if (!SERVED.test(req.url ?? '')) {
      res.writeHead(404, { 'content-type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify(new TidingsError('TIDINGS_NOT_FOUND', `The admin socket serves only /api/admin/… and /api/push, not ${(req.url ?? '').split('?')[0]}`).toBody()));
      return;
    }
    local.add(req);
    opts.handler(req, res);
  });
  const mode = opts.groupAccess ? 0o660 : 0o600;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(unusable(e)));
    // The socket file is created with the umask: narrow it for the bind so that it is never, even
    // for a moment, open to others; chmod then sets exactly the mode asked for.
    const before = process.umask(0o777 & ~mode);
    try {
      server.listen(path, () => resolve());
    } finally {
      process.umask(before);
    }
  });
  chmodSync(path, mode);
  return {
    path,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function clearStale(path: string): Promise<void> {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new AdminSocketError(path, `${path} exists and is not a socket; set tidings.admin.socket to another path or remove the file`);
  const alive = await new Promise<boolean>((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
  if (alive) {
    throw new AdminSocketError(path, `another running tidings node answers on the admin socket ${path}; give this node its own (e.g. TIDINGS_ADMIN_SOCKET=run/admin-2.sock) or none (TIDINGS_ADMIN_SOCKET=)`);
  }
  unlinkSync(path);
}
