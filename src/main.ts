import { TidingsNode } from './app/tidings-node.js';
import { ConfigError } from './config/config-error.js';
import { AdminSocketError } from './http/admin-socket.js';
import { createLogger } from './log.js';

/** `tidings serve`: one node until SIGTERM/SIGINT; SIGHUP reloads the configuration cluster-wide. */
export async function serve(configDir: string): Promise<void> {
  let node: TidingsNode;
  try {
    node = new TidingsNode({ configDir });
    await node.start();
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`tidings: configuration error: ${e.message}\n`);
      process.exit(2);
    }
    const known = startFailure(e);
    if (known) {
      // What an operator starting it by hand must read, alone: no stack, no JSON before it.
      process.stderr.write(`tidings: ${known}\n`);
      process.exit(1);
    }
    const log = createLogger();
    log.fatal({ err: e }, 'tidings could not start');
    // Also one plain line on stderr: what an operator starting it by hand reads first.
    process.stderr.write(`tidings: could not start: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  }
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    node.log.info({ signal }, 'stopping');
    // stop() keeps to tidings.shutdown.graceMs by itself; this guard is for a stop that hangs anyway.
    const guardMs = node.config.settings['tidings.shutdown.graceMs'] + 2000;
    setTimeout(() => {
      node.log.error(`stop took longer than ${guardMs} ms; exiting anyway`);
      process.exit(1);
    }, guardMs).unref();
    node.stop().then(
      () => process.exit(0),
      (err) => {
        node.log.error({ err }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGHUP', () => void node.reloadCluster());
}

/** The failures to start that have a known cause and remedy, as one line; null for the others. */
function startFailure(e: unknown): string | null {
  if (e instanceof AdminSocketError) return `cannot open the admin socket: ${e.message}`;
  const err = e as NodeJS.ErrnoException & { address?: string; port?: number };
  const where = err.address !== undefined ? `${err.address}:${err.port}` : 'the configured address';
  if (err.code === 'EADDRINUSE') {
    return `cannot listen on ${where}: the port is in use (another tidings node?); to run a second one, give it another port, e.g. TIDINGS_HTTP_PORT=${(err.port ?? 8009) + 1} TIDINGS_ADMIN_SOCKET=run/admin-${(err.port ?? 8009) + 1}.sock npm start`;
  }
  if (err.code === 'EACCES') return `cannot listen on ${where}: permission denied (ports below 1024 need privileges); set tidings.http.port or TIDINGS_HTTP_PORT`;
  if (err.code === 'EADDRNOTAVAIL') return `cannot listen on ${where}: no such address on this machine; set tidings.http.host or TIDINGS_HTTP_HOST`;
  return null;
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const args = process.argv.slice(2).filter((a) => a !== 'serve');
  const i = args.indexOf('--config');
  void serve(i >= 0 ? args[i + 1] : process.env.TIDINGS_CONFIG_DIR ?? 'config');
}
