// tidings webmail demo: sign in, hold one Socket.IO connection, show ox:mail:new live.
// Plain browser JavaScript, no build step; `io` comes from /assets/socket.io.min.js.
(() => {
  'use strict';

  const STORE_KEY = 'tidings.session';
  const $ = (id) => document.getElementById(id);
  const el = {
    loginView: $('login-view'),
    inboxView: $('inbox-view'),
    form: $('login-form'),
    login: $('login'),
    password: $('password'),
    submit: $('login-submit'),
    error: $('login-error'),
    session: $('session'),
    who: $('who'),
    logout: $('logout'),
    badge: $('badge'),
    badgeText: $('badge-text'),
    mails: $('mails'),
    empty: $('empty'),
    unread: $('unread'),
  };

  let socket = null;
  let current = null; // { session, login }
  let lastConnectAt = 0;
  let fresh = 0; // mails that arrived since the page was opened
  // The offset of the last event received: a reconnect, to whichever node, resumes from it, so
  // mail pushed while the connection was down still shows up, once (README, "Resume").
  let lastOffset = null;
  const OFFSET = /^[a-z0-9]{1,40}-\d{1,15}$/;

  // ---------- connection badge ----------

  const TRANSPORT_NAMES = { websocket: 'WebSocket', polling: 'long-polling' };

  function setBadge(state, transport, detail) {
    el.badge.dataset.state = state;
    el.badge.dataset.transport = transport || '';
    let text;
    switch (state) {
      case 'connected':
        text = `Connected · ${TRANSPORT_NAMES[transport] || transport}`;
        break;
      case 'connecting':
        text = 'Connecting…';
        break;
      case 'reconnecting':
        text = detail ? `Reconnecting… (${detail})` : 'Reconnecting…';
        break;
      default:
        text = detail ? `Disconnected · ${detail}` : 'Disconnected';
    }
    el.badgeText.textContent = text;
    el.badge.title = text;
  }

  // ---------- views ----------

  function showLogin(message) {
    el.session.hidden = true;
    el.inboxView.hidden = true;
    el.loginView.hidden = false;
    el.error.hidden = !message;
    el.error.textContent = message || '';
    el.submit.disabled = false;
    el.password.value = '';
    (el.login.value ? el.password : el.login).focus();
    document.title = 'Sign in · tidings';
  }

  function showInbox() {
    el.loginView.hidden = true;
    el.inboxView.hidden = false;
    el.session.hidden = false;
    el.who.textContent = current.login;
    el.who.title = `Signed in as ${current.login}`;
    updateTitle();
  }

  function updateTitle() {
    document.title = fresh > 0 ? `(${fresh}) Inbox · tidings` : 'Inbox · tidings';
  }

  // ---------- mail list ----------

  /** "Jürgen Müller <j@example.net>" → { name: "Jürgen Müller", address: "j@example.net" }. */
  function parseFrom(from) {
    if (!from) return { name: 'Unknown sender', address: '' };
    const m = /^\s*(.*?)\s*<([^<>]*)>\s*$/.exec(from);
    if (!m) return { name: from.trim(), address: from.trim() };
    let name = m[1];
    if (name.length >= 2 && name.startsWith('"') && name.endsWith('"')) name = name.slice(1, -1).replace(/\\(.)/g, '$1');
    return { name: name || m[2], address: m[2] };
  }

  function hue(text) {
    let h = 0;
    for (const ch of text) h = (h * 31 + ch.codePointAt(0)) % 360;
    return h;
  }

  const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });

  function node(tag, className, text) {
    const n = document.createElement(tag);
    if (className) n.className = className;
    if (text !== undefined) n.textContent = text;
    return n;
  }

  function addMail(mail) {
    if (!mail || typeof mail !== 'object') return;
    const from = parseFrom(typeof mail.from === 'string' ? mail.from : null);
    const li = node('li', 'mail fresh');
    li.dataset.id = String(mail.id ?? '');
    li.dataset.folder = String(mail.folder ?? '');

    const avatar = node('span', 'avatar', (Array.from(from.name.replace(/^[^\p{L}\p{N}]+/u, ''))[0] || '?').toUpperCase());
    avatar.style.setProperty('--h', String(hue(from.address || from.name)));
    avatar.setAttribute('aria-hidden', 'true');

    const body = node('div', 'mail-body');
    const top = node('div', 'mail-top');
    const fromEl = node('span', 'from', from.name);
    if (from.address) fromEl.title = from.address;
    const time = node('time', 'time', timeFormat.format(new Date()));
    time.dateTime = new Date().toISOString();
    top.append(fromEl, time);
    const subject = typeof mail.subject === 'string' && mail.subject.trim() !== '' ? node('div', 'subject', mail.subject) : node('div', 'subject none', '(no subject)');
    const snippet = node('div', 'snippet', typeof mail.snippet === 'string' ? mail.snippet : '');
    body.append(top, subject, snippet);

    li.append(avatar, body);
    el.mails.prepend(li);
    el.empty.hidden = true;
    setTimeout(() => li.classList.remove('fresh'), 2500);

    if (typeof mail.unread === 'number') {
      el.unread.hidden = false;
      el.unread.textContent = `${mail.unread} unread`;
    }
    fresh += 1;
    updateTitle();
  }

  function clearMails() {
    el.mails.replaceChildren();
    el.empty.hidden = false;
    el.unread.hidden = true;
    fresh = 0;
  }

  // ---------- socket ----------

  function connect() {
    disconnect();
    setBadge('connecting');
    const s = io({
      path: '/socket.io/appsuite',
      query: { session: current.session },
      // Evaluated on every (re)connect: resume from the last offset seen.
      auth: (cb) => cb(lastOffset ? { offset: lastOffset } : {}),
      // WebSocket first: it needs no sticky sessions behind a balancer; long-polling when it fails.
      transports: ['websocket', 'polling'],
      tryAllTransports: true,
    });
    socket = s;
    // Every event's last argument is its offset.
    s.onAny((_name, ...args) => {
      const last = args[args.length - 1];
      if (socket === s && typeof last === 'string' && OFFSET.test(last)) lastOffset = last;
    });
    s.on('tidings:not-recovered', () => {
      // The server cannot replay what this page missed: show the mailbox as it is now instead of
      // a stale list with a silent gap.
      if (socket === s) location.reload();
    });

    s.on('connect', () => {
      lastConnectAt = Date.now();
      const engine = s.io.engine;
      setBadge('connected', engine.transport.name);
      engine.on('upgrade', (t) => {
        if (socket === s && s.connected) setBadge('connected', t.name);
      });
    });
    s.on('disconnect', (reason) => {
      if (socket !== s) return;
      if (reason === 'io client disconnect') return setBadge('disconnected');
      if (reason === 'io server disconnect') {
        // A stopping node says when to come back (spread, so its clients don't all return at once).
        if (restartAfter !== null) {
          setBadge('reconnecting', 'server restarting');
          const wait = restartAfter;
          restartAfter = null;
          setTimeout(() => { if (socket === s) s.connect(); }, wait);
          return;
        }
        // The server closed it (session ended): try once more, unless that just happened.
        setBadge('disconnected', 'closed by the server');
        if (Date.now() - lastConnectAt > 5000) s.connect();
        return;
      }
      setBadge('reconnecting', reason.replace(/^transport /, ''));
    });
    s.io.on('reconnect_attempt', (n) => {
      if (socket === s) setBadge('reconnecting', `attempt ${n}`);
    });
    s.on('connect_error', (err) => {
      if (socket !== s) return;
      // A refused handshake is plain HTTP: 401/403 mean the session is gone or not ours.
      const status = typeof err.description === 'number' ? err.description : err.context && err.context.status;
      if (status === 401 || status === 403) {
        signOutLocally('Your session has ended. Please sign in again.');
        return;
      }
      setBadge(s.active ? 'reconnecting' : 'disconnected', s.active ? 'server unreachable' : err.message);
    });
    let restartAfter = null;
    s.on('server:restart', (hint) => {
      if (socket === s && hint && Number.isFinite(hint.reconnectAfterMs)) restartAfter = hint.reconnectAfterMs;
    });
    s.on('session:invalid', () => {
      if (socket === s) signOutLocally('Your session has ended. Please sign in again.');
    });
    s.on('ox:mail:new', (mail) => addMail(mail));
  }

  function disconnect() {
    if (!socket) return;
    const s = socket;
    socket = null;
    s.removeAllListeners();
    s.io.removeAllListeners();
    s.close();
  }

  // ---------- session ----------

  function signOutLocally(message) {
    disconnect();
    sessionStorage.removeItem(STORE_KEY);
    current = null;
    lastOffset = null;
    clearMails();
    setBadge('disconnected');
    showLogin(message);
  }

  async function signIn(login, password) {
    const res = await fetch('/api/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ login, password }),
      credentials: 'same-origin',
    });
    let body = null;
    try {
      body = await res.json();
    } catch {
      body = null;
    }
    if (!res.ok) {
      const msg = body && body.error && body.error.message ? body.error.message : `Sign-in failed (${res.status})`;
      throw new Error(msg);
    }
    return { session: body.session, login: body.login || login };
  }

  el.form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const login = el.login.value.trim();
    const password = el.password.value;
    if (!login || !password) {
      el.error.hidden = false;
      el.error.textContent = 'Enter your login and password.';
      return;
    }
    el.submit.disabled = true;
    el.error.hidden = true;
    try {
      current = await signIn(login, password);
      sessionStorage.setItem(STORE_KEY, JSON.stringify(current));
      clearMails();
      showInbox();
      connect();
    } catch (e) {
      showLogin(e instanceof Error ? e.message : String(e));
    }
  });

  el.logout.addEventListener('click', async () => {
    const s = current;
    signOutLocally();
    if (s) {
      await fetch(`/api/logout?session=${encodeURIComponent(s.session)}`, { method: 'POST', credentials: 'same-origin' }).catch(() => undefined);
    }
  });

  // ---------- start ----------

  setBadge('disconnected');
  try {
    const saved = JSON.parse(sessionStorage.getItem(STORE_KEY) || 'null');
    if (saved && typeof saved.session === 'string' && typeof saved.login === 'string') current = saved;
  } catch {
    current = null;
  }
  if (current) {
    showInbox();
    connect();
  } else {
    showLogin();
  }
})();
