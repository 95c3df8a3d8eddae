import type { FastifyInstance } from 'fastify';
import { TidingsError } from '../../errors.js';
import type { CredentialCheck } from '../../auth/credential-check.js';
import type { DeviceCookies } from '../../auth/device-cookies.js';
import { sameSecret } from '../../auth/constant-time.js';
import type { Metrics } from '../../metrics.js';
import { userKey } from '../../domain/types.js';
import type { LoginLimiter } from '../../auth/login-limiter.js';
import { readCookie, SECRET_COOKIE, type SessionService } from '../../auth/session-service.js';
import type { ConfigService } from '../../config/config-service.js';
import { trustedProxies } from '../client-ip.js';
import { objectBody, queryOne, reqStr, type Query } from '../validate.js';

export interface SessionRouteDeps {
  config: ConfigService;
  sessions: SessionService;
  limiter: LoginLimiter;
  credentials: CredentialCheck;
  devices: DeviceCookies;
  metrics: Pick<Metrics, 'loginFailures' | 'loginLimited'>;
  /** Closes every socket of the session on every node. */
  endSession(sessionId: string): Promise<void>;
}

export function registerSessionRoutes(app: FastifyInstance, d: SessionRouteDeps): void {
  // The dummy hash is made ahead, so the first unknown login after a start or reload does not wait for it.
  void d.credentials.dummyFor(d.config.directory);
  d.config.onChange(() => void d.credentials.dummyFor(d.config.directory));
  app.post('/api/login', async (req, reply) => {
    const body = objectBody(req.body);
    const login = reqStr(body, 'login', 320);
    const password = reqStr(body, 'password', 1024);
    const s = d.config.settings;
    const ip = trustedProxies(s['tidings.http.trustedProxies']).clientIp(req.raw);
    const limits = {
      perIp: s['tidings.login.maxFailuresPerIp'],
      perIpLogin: s['tidings.login.maxFailuresPerIpLogin'],
      perLogin: s['tidings.login.maxFailuresPerLogin'],
      windowMs: s['tidings.login.failureWindowSeconds'] * 1000,
      maxTracked: s['tidings.login.maxTracked'],
    };
    const attempt = { ip, login, device: d.devices.deviceOf(login, req.headers.cookie) };
    const wait = d.limiter.retryAfter(attempt, limits);
    if (wait > 0) {
      d.metrics.loginLimited.inc();
      // The client IP as tidings.http.trustedProxies lets it be known: what an operator blocks upstream.
      req.log.warn({ ip, login }, 'login refused: too many failed logins');
      throw rateLimited(wait);
    }
    const user = await d.credentials.check(d.config.directory, login, password);
    if (!user) {
      // Past its IP's allowance a wrong password is a 429 too, and is counted like any failure.
      const ipWait = d.limiter.failureRetryAfter(attempt, limits);
      d.limiter.recordFailure(attempt, limits);
      d.metrics.loginFailures.inc({ reason: 'bad_credentials' });
      if (ipWait > 0) d.metrics.loginLimited.inc();
      req.log.info({ ip, login, limited: ipWait > 0 }, 'login failed');
      throw ipWait > 0 ? rateLimited(ipWait) : new TidingsError('TIDINGS_BAD_CREDENTIALS');
    }
    d.limiter.recordSuccess(attempt);
    if (!user.mailEnabled) {
      d.metrics.loginFailures.inc({ reason: 'disabled' });
      throw new TidingsError('TIDINGS_USER_DISABLED');
    }
    const session = await d.sessions.create(user, ip);
    req.log.debug({ ip, user: userKey({ userId: user.id, contextId: user.contextId }) }, 'logged in');
    const maxAge = s['tidings.session.lifetimeSeconds'];
    const cookie = [`${SECRET_COOKIE}=${session.secret}`, 'Path=/', 'HttpOnly', `SameSite=${s['tidings.session.cookieSameSite']}`, `Max-Age=${maxAge}`];
    const secure = s['tidings.session.cookieSecure'] || s['tidings.session.cookieSameSite'] === 'None';
    if (secure) cookie.push('Secure');
    // The device cookie (renewed at every success) exempts this browser from this login's lockout.
    const deviceAge = s['tidings.login.deviceCookieDays'] * 86_400;
    const device = d.devices.issue(user.login, deviceAge);
    const deviceCookie = [`${device.name}=${device.value}`, 'Path=/', 'HttpOnly', `SameSite=${s['tidings.session.cookieSameSite']}`, `Max-Age=${deviceAge}`, ...(secure ? ['Secure'] : [])];
    void reply.header('Set-Cookie', [cookie.join('; '), deviceCookie.join('; ')]);
    return { session: session.id, user: user.id, context: user.contextId, login: user.login, expiresAt: new Date(session.expiresAt).toISOString() };
  });

  app.post('/api/logout', async (req, reply) => {
    const id = queryOne(req.query as Query, 'session') ?? (req.body && typeof req.body === 'object' ? (req.body as Record<string, unknown>).session : undefined);
    if (id === undefined || id === null || id === '') throw new TidingsError('TIDINGS_SESSION_MISSING');
    if (typeof id !== 'string') throw new TidingsError('TIDINGS_VALIDATION', "'session' must be a string");
    const session = await d.sessions.get(id);
    if (!session) throw new TidingsError('TIDINGS_SESSION_UNKNOWN');
    // Knowing a session id is not enough to end it: the secret cookie proves it is the browser's own.
    const secret = readCookie(req.headers.cookie, SECRET_COOKIE);
    if (secret === null) throw new TidingsError('TIDINGS_SECRET_MISSING');
    if (!sameSecret(secret, session.secret)) throw new TidingsError('TIDINGS_SECRET_WRONG');
    await d.sessions.end(id);
    await d.endSession(id);
    void reply.header('Set-Cookie', `${SECRET_COOKIE}=; Path=/; HttpOnly; Max-Age=0`);
    return { ok: true };
  });
}

function rateLimited(seconds: number): TidingsError {
  return new TidingsError('TIDINGS_LOGIN_RATE_LIMITED', `Too many failed logins; retry in ${seconds} s`, undefined, { 'Retry-After': String(seconds) });
}
