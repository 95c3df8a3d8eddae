import type { FastifyInstance } from 'fastify';
import { TidingsError } from '../../errors.js';
import type { LoginLimiter } from '../../auth/login-limiter.js';
import { verifyPassword } from '../../auth/passwords.js';
import { readCookie, SECRET_COOKIE, type SessionService } from '../../auth/session-service.js';
import type { ConfigService } from '../../config/config-service.js';
import { trustedProxies } from '../client-ip.js';
import { objectBody, reqStr } from '../validate.js';

export interface SessionRouteDeps {
  config: ConfigService;
  sessions: SessionService;
  limiter: LoginLimiter;
  /** Closes every socket of the session on every node. */
  endSession(sessionId: string): Promise<void>;
}

export function registerSessionRoutes(app: FastifyInstance, d: SessionRouteDeps): void {
  app.post('/api/login', async (req, reply) => {
    const body = objectBody(req.body);
    const login = reqStr(body, 'login', 320);
    const password = reqStr(body, 'password', 1024);
    const s = d.config.settings;
    const ip = trustedProxies(s['tidings.http.trustedProxies']).clientIp(req.raw);
    const limits = { perIp: s['tidings.login.maxFailuresPerIp'], perLogin: s['tidings.login.maxFailuresPerLogin'], windowMs: s['tidings.login.failureWindowSeconds'] * 1000 };
    const wait = d.limiter.retryAfter(ip, login, limits);
    if (wait > 0) throw new TidingsError('TIDINGS_LOGIN_RATE_LIMITED', `Too many failed logins; retry in ${wait} s`, { headers: { 'Retry-After': String(wait) } });
    const user = d.config.directory.byLogin.get(login.toLowerCase());
    // Verify against a dummy hash for unknown logins too, so timing does not reveal which logins exist.
    const ok = await verifyPassword(password, user?.password ?? '{PLAIN}\u0000never');
    if (!user || !ok) {
      d.limiter.recordFailure(ip, login, limits.windowMs);
      throw new TidingsError('TIDINGS_BAD_CREDENTIALS');
    }
    if (!user.mailEnabled) throw new TidingsError('TIDINGS_USER_DISABLED');
    const session = await d.sessions.create(user, ip);
    const maxAge = s['tidings.session.lifetimeSeconds'];
    const cookie = [`${SECRET_COOKIE}=${session.secret}`, 'Path=/', 'HttpOnly', `SameSite=${s['tidings.session.cookieSameSite']}`, `Max-Age=${maxAge}`];
    if (s['tidings.session.cookieSecure'] || s['tidings.session.cookieSameSite'] === 'None') cookie.push('Secure');
    void reply.header('Set-Cookie', cookie.join('; '));
    return { session: session.id, user: user.id, context: user.contextId, login: user.login, expiresAt: new Date(session.expiresAt).toISOString() };
  });

  app.post('/api/logout', async (req, reply) => {
    const q = req.query as Record<string, string | undefined>;
    const id = q.session ?? (req.body && typeof req.body === 'object' ? (req.body as Record<string, unknown>).session : undefined);
    if (typeof id !== 'string' || id === '') throw new TidingsError('TIDINGS_SESSION_MISSING');
    const session = await d.sessions.get(id);
    if (!session) throw new TidingsError('TIDINGS_SESSION_UNKNOWN');
    // Knowing a session id is not enough to end it: the secret cookie proves it is the browser's own.
    const secret = readCookie(req.headers.cookie, SECRET_COOKIE);
    if (secret === null) throw new TidingsError('TIDINGS_SECRET_MISSING');
    if (secret !== session.secret) throw new TidingsError('TIDINGS_SECRET_WRONG');
    await d.sessions.end(id);
    await d.endSession(id);
    void reply.header('Set-Cookie', `${SECRET_COOKIE}=; Path=/; HttpOnly; Max-Age=0`);
    return { ok: true };
  });
}
