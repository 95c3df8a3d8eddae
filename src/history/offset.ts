import { randomBytes } from 'node:crypto';
import { TidingsError } from '../errors.js';

/**
 * A position in one user's event log: `<epoch>-<seq>` on the wire (README, "Resume").
 *
 * `seq` counts the user's events from 1 within an epoch, without holes, so "nothing missed" is
 * arithmetic: the events after offset `E-7` are exactly `E-8 … E-last`. The epoch names one life
 * of the log; it changes when the log is lost (Redis restarted empty, a single node restarted),
 * and an offset from another epoch can never be mistaken for a position in this one.
 */
export interface Offset {
  readonly epoch: string;
  readonly seq: number;
}

const GRAMMAR = /^([a-z0-9]{1,40})-(\d{1,15})$/;

/** Real log epochs start with `e`; offsets of events the log could not take start with `u`. */
const UNLOGGED = 'u';

export function formatOffset(o: Offset): string {
  return `${o.epoch}-${o.seq}`;
}

/** The offset in `text`, or null when it is not one (the caller answers TIDINGS_BAD_OFFSET). */
export function parseOffset(text: string): Offset | null {
  const m = GRAMMAR.exec(text);
  if (!m) return null;
  const seq = Number(m[2]);
  if (!Number.isSafeInteger(seq)) return null;
  return { epoch: m[1], seq };
}

/**
 * A client-supplied offset: trimmed, with HTTP entity-tag dressing (`W/`, quotes) removed.
 * Throws TIDINGS_BAD_OFFSET naming where it came from.
 */
export function offsetFrom(raw: string, where: string): Offset {
  let t = raw.trim();
  if (t.startsWith('W/')) t = t.slice(2);
  if (t.length >= 2 && t.startsWith('"') && t.endsWith('"')) t = t.slice(1, -1);
  const o = parseOffset(t);
  if (!o) {
    const shown = raw.length > 60 ? `${raw.slice(0, 60)}…` : raw;
    throw new TidingsError('TIDINGS_BAD_OFFSET', `${where} is not an offset: ${JSON.stringify(shown)} (expected <epoch>-<seq>, as in the id of an event)`);
  }
  return o;
}

export function isUnlogged(o: Offset): boolean {
  return o.epoch.startsWith(UNLOGGED);
}

const processTag = randomBytes(3).readUIntBE(0, 3).toString(36);
let epochs = 0;

/**
 * A new epoch name, unique across processes and restarts: the time, this process's random tag and
 * a counter. Handed to the log with every append and read; the log uses it only when it has none.
 */
export function newEpoch(now = Date.now()): string {
  return `e${now.toString(36)}${processTag}${(epochs++ % 1296).toString(36)}`;
}

/**
 * Offsets for events that could not be written to the log (the store was unreachable): one epoch
 * per process, so they are unique, and resuming from one is always "not recovered" — the log does
 * not hold them, so it cannot say what else was missed.
 */
export class UnloggedOffsets {
  readonly #epoch = `${UNLOGGED}${Date.now().toString(36)}${randomBytes(3).readUIntBE(0, 3).toString(36)}`;
  #seq = 0;

  next(): string {
    return `${this.#epoch}-${++this.#seq}`;
  }
}
