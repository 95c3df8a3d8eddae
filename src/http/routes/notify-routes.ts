import type { FastifyInstance, FastifyReply } from 'fastify';
import { sameSecret } from '../../auth/constant-time.js';
import type { ConfigService } from '../../config/config-service.js';
import type { Publisher } from '../../delivery/publisher.js';
import type { DirUser } from '../../directory/directory.js';
import { parseUserKey, userKey, type UserRef } from '../../domain/types.js';
import { TidingsError, type ErrorCode } from '../../errors.js';
import { drainRest } from '../drain-rest.js';
import type { Logger } from '../../log.js';
import { idempotencyKey, parseNotifyBody, toMailEvent } from '../../mail/notify-payload.js';
import type { Metrics } from '../../metrics.js';

/** Where Dovecot's push_notification `ox` driver PUTs (README, "Mail push from Dovecot"). */
export const NOTIFY_PATH = '/preliminary/http-notify/v1/notify';
/** Largest notify body; Dovecot's are well under 1 KiB (the snippet is cut at 200 characters). */
export const NOTIFY_BODY_LIMIT = 65_536;
/** The event every new mail becomes. */
export const MAIL_EVENT = 'ox:mail:new';

export interface NotifyRouteDeps {
  config: ConfigService;
  publisher: Pick<Publisher, 'publish'>;
  metrics: Metrics;
  log: Logger;
}

const WWW_AUTHENTICATE = 'Basic realm="tidings"';

/**
 * `PUT /preliminary/http-notify/v1/notify`: Basic auth, a JSON body as Dovecot sends it, the
 * `user` mapped to a directory user; the answer goes out at once and `ox:mail:new` is published
 * after it, with `(user, uidvalidity, uid)` as the idempotency key so Dovecot's retries never
 * show a mail twice.
 */
export function registerNotifyRoutes(app: FastifyInstance, d: NotifyRouteDeps): void {
  app.put(
    NOTIFY_PATH,
    {
      bodyLimit: NOTIFY_BODY_LIMIT,
      // Authentication and the media type are checked before the body is read.
      onRequest: async (req, reply) => {
        const s = d.config.settings;
        const login = s['tidings.notify.login'];
        const password = s['tidings.notify.password'];
        if (!login && !password) return fail(reply, 'TIDINGS_NOTIFY_DISABLED');
        const presented = basicCredentials(req.headers.authorization);
        // Both comparisons always run, so the timing says nothing about which part was wrong.
        const loginOk = sameSecret(presented?.login ?? '', login);
        const passwordOk = sameSecret(presented?.password ?? '', password);
        if (!presented || !loginOk || !passwordOk) return fail(reply, 'TIDINGS_NOTIFY_UNAUTHORIZED', { 'WWW-Authenticate': WWW_AUTHENTICATE });
        const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
        if (type !== 'application/json') return fail(reply, 'TIDINGS_UNSUPPORTED_MEDIA_TYPE', {}, 'Content-Type must be application/json (as Dovecot sends it)');
        return undefined;
      },
    },
    async (req, reply) => {
      const body = parseNotifyBody(req.body);
      d.metrics.notifyReceived.inc({ event: eventLabel(body.event) });
      if (body.event !== 'messageNew') {
        req.log.debug({ event: body.event, user: body.user }, 'notify: ignored an event other than messageNew');
        void reply.code(200);
        return { ignored: true, event: body.event };
      }
      const user = resolveUser(d.config, body.user);
      if (!user) {
        d.metrics.notifyUnknownUser.inc();
        req.log.info({ user: body.user }, 'notify: no such user in the directory');
        throw new TidingsError('TIDINGS_UNKNOWN_USER', `No user ${JSON.stringify(body.user)} in the directory`);
      }
      const key = userKey(user);
      const mail = toMailEvent(body);
      // Never make the mail delivery wait (Dovecot's LMTP reply waits for this answer):
      // the publish runs after the answer has been written.
      setImmediate(() => {
        d.publisher
          .publish(
            { user, name: MAIL_EVENT, args: [mail], namespace: '/', pathFilter: null, sourceToken: null, key: idempotencyKey(key, body) },
            'dovecot',
          )
          .then((r) => d.log.debug({ user: key, uid: body.uid, id: r.id, duplicate: r.duplicate, local: r.local }, 'notify: published'))
          .catch((err: unknown) => d.log.error({ err, user: key, uid: body.uid }, 'notify: could not publish a new-mail event'));
      });
      void reply.code(202);
      return { queued: true };
    },
  );
}

function fail(reply: FastifyReply, code: ErrorCode, headers: Record<string, string> = {}, message?: string): FastifyReply {
  const e = new TidingsError(code, message);
  // Refused before the body is read: drop the rest of it within bounds, as for a 413.
  drainRest(reply.request.raw);
  return reply.code(e.status).headers(headers).type('application/json; charset=utf-8').send(e.toBody());
}

/** `Authorization: Basic base64(login:password)`; null when absent or malformed. */
export function basicCredentials(header: string | undefined): { login: string; password: string } | null {
  const m = /^Basic[ \t]+([A-Za-z0-9+/]+={0,2})[ \t]*$/i.exec(header ?? '');
  if (!m?.[1]) return null;
  const text = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon < 0) return null;
  return { login: text.slice(0, colon), password: text.slice(colon + 1) };
}

/** The `event` label of notifyReceived, kept to a bounded set of plain names. */
function eventLabel(event: string): string {
  return /^[A-Za-z][A-Za-z0-9_]{0,39}$/.test(event) ? event : 'other';
}

/**
 * `user` is either `<userId>@<contextId>` (OX App Suite's METADATA value, with
 * `user_from_metadata`) or a login (Dovecot's canonical username). Dovecot lower-cases logins and
 * strips a `+detail`; the same is done here, so both `Alice+news@Example.com` and
 * `alice@example.com` name alice.
 */
export function resolveUser(config: Pick<ConfigService, 'directory'>, text: string): UserRef | null {
  const dir = config.directory;
  const ref = parseUserKey(text);
  if (ref) return dir.users.has(userKey(ref)) ? ref : null;
  const lower = text.toLowerCase();
  const found: DirUser | undefined = dir.byLogin.get(lower) ?? dir.byLogin.get(stripDetail(lower));
  return found ? { userId: found.id, contextId: found.contextId } : null;
}

function stripDetail(login: string): string {
  const at = login.lastIndexOf('@');
  const local = at < 0 ? login : login.slice(0, at);
  const plus = local.indexOf('+');
  if (plus < 0) return login;
  return local.slice(0, plus) + (at < 0 ? '' : login.slice(at));
}
