import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { EventLog, HistoryLimits } from '../ports/event-log.js';
import { ResumeFeed, type FeedScope } from './resume-feed.js';

/** Makes one ResumeFeed per connection, all on this node's event log and the history limits in force. */
export class Feeds {
  readonly #log: EventLog;
  readonly #limits: () => HistoryLimits;
  readonly #logger: Logger;
  readonly #metrics: Metrics;

  constructor(deps: { log: EventLog; limits: () => HistoryLimits; logger: Logger; metrics: Metrics }) {
    this.#log = deps.log;
    this.#limits = deps.limits;
    this.#logger = deps.logger;
    this.#metrics = deps.metrics;
  }

  open(scope: FeedScope): ResumeFeed {
    return new ResumeFeed({ log: this.#log, limits: this.#limits, scope, logger: this.#logger, onResume: (result) => this.#metrics.historyReplays.inc({ result }) });
  }
}
