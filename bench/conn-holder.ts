/**
 * A connection holder of bench/messaging.ts (its own process, commands over IPC): logs users in
 * and holds idle Socket.IO connections for the connect and memory figures. Several holders share
 * 20,000 connections, so that no client process needs more open files than its limit allows.
 */
import { Agent } from 'node:http';
import type { Socket } from 'socket.io-client';
import { connectSocketIo, login, pool, type Login } from './clients.js';

export type HolderCommand =
  | { readonly cmd: 'login'; readonly url: string; readonly users: readonly number[]; readonly parallel: number }
  | { readonly cmd: 'connect'; readonly kind: 'A' | 'T'; readonly url: string; readonly users: readonly number[]; readonly parallel: number }
  | { readonly cmd: 'close' };

export type HolderReply = { readonly ok: true; readonly held: number } | { readonly ok: false; readonly error: string };

const logins = new Map<number, Login>();
const sockets: Socket[] = [];
let dropped = 0;

async function run(m: HolderCommand): Promise<number> {
  switch (m.cmd) {
    case 'login': {
      const agent = new Agent({ keepAlive: true, maxSockets: m.parallel });
      await pool(m.users, m.parallel, async (u) => logins.set(u, await login(agent, m.url, u)));
      agent.destroy();
      return logins.size;
    }
    case 'connect':
      await pool(m.users, m.parallel, async (u) => {
        const l = logins.get(u);
        if (m.kind === 'T' && !l) throw new Error(`u${u} has not logged in`);
        const s = await connectSocketIo(m.url, 'websocket', m.kind === 'T' ? { login: l } : { auth: { user: String(u) } });
        s.on('disconnect', () => dropped++);
        sockets.push(s);
      });
      if (dropped > 0) throw new Error(`${dropped} idle connections dropped`);
      return sockets.length;
    case 'close':
      dropped = -Infinity;
      for (const s of sockets.splice(0)) s.close();
      logins.clear();
      return 0;
  }
}

process.on('message', (m: HolderCommand) => {
  run(m).then(
    (held) => process.send!({ ok: true, held } satisfies HolderReply),
    (e: unknown) => process.send!({ ok: false, error: e instanceof Error ? e.message : String(e) } satisfies HolderReply),
  );
});
process.on('disconnect', () => process.exit(0));
