import { connect, createServer, type Server, type Socket } from 'node:net';

export interface SlowProxy {
  /** `host:port` to use in place of the upstream's. */
  readonly host: string;
  stop(): Promise<void>;
}

/**
 * A TCP proxy on a free loopback port that passes requests through at once and holds every answer
 * for `delayMs`: the server behind it stays as fast as in production, while its client sees it slow
 * (for Dovecot's retry after `timeout_msecs`). Closing either side closes the other.
 */
export async function startSlowProxy(upstreamPort: number, delayMs: number): Promise<SlowProxy> {
  const open = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(upstreamPort, '127.0.0.1');
    open.add(client);
    open.add(upstream);
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close).on('close', () => {
      open.delete(client);
      close();
    });
    upstream.on('error', close).on('close', () => {
      open.delete(upstream);
      // Late answers still go out after their delay, unless the client gave up first.
      setTimeout(() => client.end(), delayMs).unref();
    });
    client.pipe(upstream);
    upstream.on('data', (chunk: Buffer) => {
      setTimeout(() => client.writable && client.write(chunk), delayMs).unref();
    });
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', () => resolve()));
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('slow proxy: no port');
  return {
    host: `127.0.0.1:${addr.port}`,
    stop: () => {
      for (const s of open) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
