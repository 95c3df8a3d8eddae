import type { UserKey } from '../domain/types.js';
import type { Offset } from '../history/offset.js';
import type { Lifecycle } from './lifecycle.js';

/** What the log keeps of one event: enough to replay it under the same rules as a live delivery. */
export interface LogEntry {
  readonly seq: number;
  /** Epoch ms when it was appended (the age bound is counted from here). */
  readonly at: number;
  /** The event's wire body `{name,args,namespace}` without its id (the id is the offset). */
  readonly body: string;
  readonly pathFilter: string | null;
  readonly sourceToken: string | null;
}

export interface AppendEntry {
  readonly body: string;
  readonly pathFilter: string | null;
  readonly sourceToken: string | null;
}

/** `tidings.history.size` and `tidings.history.ttlSeconds`, read per call (both are reloadable). */
export interface HistoryLimits {
  /** Events kept per user; 0 keeps none (offsets still count, so a caught-up client resumes). */
  readonly size: number;
  readonly ttlMs: number;
}

export type NotRecoveredReason = 'epoch' | 'trimmed' | 'ahead';

/**
 * The answer to "what came after this offset". `epoch` and `last` always describe the log now,
 * so a client that was not recovered continues from `<epoch>-<last>`.
 */
export type LogRead =
  | { readonly recovered: true; readonly epoch: string; readonly last: number; readonly entries: readonly LogEntry[] }
  | { readonly recovered: false; readonly reason: NotRecoveredReason; readonly epoch: string; readonly last: number };

/**
 * Each user's recent events, so that any transport on any node can resume a client from an offset
 * with no gap and no duplicate.
 *
 * Guarantees:
 * - `append` gives the user's next offset: within an epoch the sequence goes 1, 2, 3… without
 *   holes, in the order the appends were made (atomic per user, cluster-wide).
 * - An epoch lives as long as the log: when the log is lost (the store restarted empty, or its
 *   record of the user expired, a day after the user's last event) the next append or read starts
 *   a new epoch, and every offset of the old one is answered "not recovered: epoch".
 * - The log keeps at most `size` entries per user, none older than `ttlMs`; a read never returns
 *   an entry older than `ttlMs`, even when no append has trimmed it yet.
 * - `read(user, since)` returns every entry after `since` in order, or says why it cannot:
 *   `epoch` (another epoch), `trimmed` (some of them were dropped by size or age), `ahead` (the
 *   offset is past the last one: the log lost writes). It never returns a partial answer.
 * - `read(user, null)` returns no entries and the log's head; it creates an empty log (a new epoch
 *   at seq 0) when there is none, so the head is always an offset to resume from.
 */
export interface EventLog extends Lifecycle {
  append(user: UserKey, entry: AppendEntry, limits: HistoryLimits): Promise<Offset>;
  read(user: UserKey, since: Offset | null, limits: HistoryLimits): Promise<LogRead>;
}

/** How long a log keeps its epoch and last offset after the user's last event (a day). */
export const LOG_RECORD_TTL_MS = 86_400_000;
