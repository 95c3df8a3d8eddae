import type { Logger } from '../log.js';
import type { EventLog, HistoryLimits } from '../ports/event-log.js';
import { ResumeFeed, type FeedScope } from './resume-feed.js';

/** Makes one ResumeFeed per connection, all on this node's event log and the history limits in force. */
export class Feeds {
  readonly #log: EventLog;
  readonly #limits: () => HistoryLimits;
  readonly #logger: Logger;

  constructor(deps: { log: EventLog; limits: () => HistoryLimits; logger: Logger }) {
    this.#log = deps.log;
    this.#limits = deps.limits;
    this.#logger = deps.logger;
  }

  open(scope: FeedScope): ResumeFeed {
    return new ResumeFeed({ log: this.#log, limits: this.#limits, scope, logger: this.#logger });
  }
}
