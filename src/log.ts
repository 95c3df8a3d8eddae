import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

/**
 * The one root logger. Components take `log.child({ component: 'x' })`.
 * Pretty output only on an interactive terminal; JSON lines everywhere else so operators can ship them.
 * Secrets never reach a log line: the redact list covers every field that may carry one.
 */
export function createLogger(opts: { level?: string; pretty?: boolean; destination?: NodeJS.WritableStream } = {}): Logger {
  const level = opts.level ?? process.env.TIDINGS_LOG_LEVEL ?? 'info';
  const base: LoggerOptions = {
    level,
    base: { pid: process.pid },
    redact: {
      paths: ['password', 'secret', 'token', 'authorization', '*.password', '*.secret', '*.token', '*.authorization', 'req.headers.cookie', 'req.headers.authorization'],
      censor: '[redacted]',
    },
  };
  const pretty = opts.pretty ?? (process.stdout.isTTY === true && !opts.destination);
  if (pretty) {
    return pino({ ...base, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'HH:MM:ss.l' } } });
  }
  return opts.destination ? pino(base, opts.destination as pino.DestinationStream) : pino(base);
}
