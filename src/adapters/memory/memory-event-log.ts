import type { UserKey } from '../../domain/types.js';
import { newEpoch, type Offset } from '../../history/offset.js';
import { LOG_RECORD_TTL_MS, type AppendEntry, type EventLog, type HistoryLimits, type LogEntry, type LogRead } from '../../ports/event-log.js';

interface UserLog {
  epoch: string;
  seq: number;
  lastAt: number;
  /** Oldest first; entries[i].seq === entries[0].seq + i. */
  entries: LogEntry[];
  expiresAt: number;
}

/** One node's event log. A restart loses it, and the next append or read starts a new epoch. */
export class MemoryEventLog implements EventLog {
  readonly #logs = new Map<UserKey, UserLog>();
  readonly #now: () => number;
  #sinceSweep = 0;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  async start(): Promise<void> {}
  /** Keeps the log: in-process nodes of one test cluster share it, and a stopped process loses it anyway. */
  async stop(): Promise<void> {}

  async append(user: UserKey, entry: AppendEntry, limits: HistoryLimits): Promise<Offset> {
    const now = this.#now();
    const log = this.#open(user, now);
    log.seq++;
    log.lastAt = Math.max(now, log.lastAt);
    log.expiresAt = now + Math.max(limits.ttlMs, LOG_RECORD_TTL_MS);
    if (limits.size > 0) {
      log.entries.push({ seq: log.seq, at: log.lastAt, body: entry.body, pathFilter: entry.pathFilter, sourceToken: entry.sourceToken });
      trim(log, limits, now);
    } else log.entries = [];
    return { epoch: log.epoch, seq: log.seq };
  }

  async read(user: UserKey, since: Offset | null, limits: HistoryLimits): Promise<LogRead> {
    const now = this.#now();
    const log = this.#open(user, now);
    const head = { epoch: log.epoch, last: log.seq };
    if (since === null) return { recovered: true, ...head, entries: [] };
    if (since.epoch !== log.epoch) return { recovered: false, reason: 'epoch', ...head };
    if (since.seq > log.seq) return { recovered: false, reason: 'ahead', ...head };
    const missed = log.seq - since.seq;
    if (missed === 0) return { recovered: true, ...head, entries: [] };
    trim(log, limits, now);
    const entries = log.entries.slice(-missed);
    if (entries.length < missed) return { recovered: false, reason: 'trimmed', ...head };
    return { recovered: true, ...head, entries };
  }

  #open(user: UserKey, now: number): UserLog {
    if (++this.#sinceSweep >= 1024) {
      this.#sinceSweep = 0;
      for (const [u, l] of this.#logs) if (l.expiresAt <= now) this.#logs.delete(u);
    }
    let log = this.#logs.get(user);
    if (!log || log.expiresAt <= now) {
      log = { epoch: newEpoch(now), seq: 0, lastAt: 0, entries: [], expiresAt: now + LOG_RECORD_TTL_MS };
      this.#logs.set(user, log);
    }
    return log;
  }
}

function trim(log: UserLog, limits: HistoryLimits, now: number): void {
  let drop = Math.max(0, log.entries.length - limits.size);
  while (drop < log.entries.length && log.entries[drop].at < now - limits.ttlMs) drop++;
  if (drop > 0) log.entries.splice(0, drop);
}
