import type { IncomingMessage } from 'node:http';

/** Most bytes of a refused body read and thrown away so that its client can read the answer. */
export const DRAIN_MAX_BYTES = 64 * 1024 * 1024;
/** Longest time a refused body is read and thrown away, counted from the answer (nginx's lingering_time). */
export const DRAIN_MAX_MS = 30_000;

/**
 * After an answer that leaves the request body unread (413, an early 401): reads and discards the
 * rest of the body, so the client finishes its upload and then reads the answer, as nginx's
 * lingering close does. Closing at once instead would reset the connection while the client is
 * still sending, and a reset makes the client's TCP stack drop the answer unread. The drain is
 * bounded: past DRAIN_MAX_BYTES or DRAIN_MAX_MS the connection is closed anyway. Once the body is
 * through, the connection is an ordinary keep-alive one again.
 */
export function drainRest(req: IncomingMessage): void {
  if (req.complete || req.destroyed) return;
  const socket = req.socket;
  let left = DRAIN_MAX_BYTES;
  const timer = setTimeout(() => socket.destroy(), DRAIN_MAX_MS).unref();
  const done = () => clearTimeout(timer);
  req.on('data', (chunk: Buffer) => {
    left -= chunk.length;
    if (left < 0) {
      done();
      socket.destroy();
    }
  });
  req.once('end', done);
  req.once('close', done);
  req.resume();
}
