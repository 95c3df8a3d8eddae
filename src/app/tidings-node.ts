import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { resolve as resolvePath } from 'node:path';
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { CredentialCheck } from '../auth/credential-check.js';
import { DeviceCookies } from '../auth/device-cookies.js';
import { LoginLimiter } from '../auth/login-limiter.js';
import { schemeOf } from '../auth/passwords.js';
import { SessionService } from '../auth/session-service.js';
import { ConfigService, type ReloadOutcome } from '../config/config-service.js';
import { loadConfig } from '../config/load-config.js';
import { watchConfigDir } from '../config/watch-config.js';
import { CLOSE, goingAway } from '../delivery/local-connection.js';
import { LocalHub } from '../delivery/local-hub.js';
import { SessionExpiryWatch } from '../auth/session-expiry-watch.js';
import { DedupeWindow } from '../delivery/dedupe-window.js';
import { Publisher } from '../delivery/publisher.js';
import { RemoteBuffer } from '../delivery/remote-buffer.js';
import { openAdminSocket, type AdminSocket } from '../http/admin-socket.js';
import { buildHttp } from '../http/app.js';
import { HttpDrain } from '../http/drain.js';
import { dispatch } from '../http/dispatcher.js';
import { trustedProxies } from '../http/client-ip.js';
import { advertiseUrl } from '../cluster/advertise-url.js';
import { MemberUrls } from '../cluster/member-urls.js';
import { PollRelay } from '../cluster/poll-relay.js';
import { relayAuthFor } from '../cluster/relay-auth.js';
import { registerAdminRoutes } from '../http/routes/admin-routes.js';
import { registerDiagRoutes } from '../http/routes/diag-routes.js';
import { registerHealthRoutes } from '../http/routes/health-routes.js';
import { registerNotifyRoutes } from '../http/routes/notify-routes.js';
import { registerPushRoutes } from '../http/routes/push-routes.js';
import { registerSessionRoutes } from '../http/routes/session-routes.js';
import { registerWebRoutes } from '../http/routes/web-routes.js';
import { registerPollRoutes } from '../http/routes/poll-routes.js';
import { registerSseRoutes } from '../http/routes/sse-routes.js';
import { Feeds } from '../history/feeds.js';
import { createLogger, type Logger } from '../log.js';
import { Metrics } from '../metrics.js';
import { HandshakeGate } from '../sockets/handshake-gate.js';
import { DiagWsEndpoint } from '../sockets/diag-ws-endpoint.js';
import { PlainWsEndpoint } from '../sockets/plain-ws-endpoint.js';
import { SocketIoEndpoint } from '../sockets/socketio-endpoint.js';
import { memoryBackends, type Backends } from './backends.js';
import { busDispatch } from './bus-dispatch.js';
import { createBackends } from './create-backends.js';
import { Readiness } from './readiness.js';

export interface NodeOptions {
  readonly configDir: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly log?: Logger;
  /** Backends made by the caller (in-process multi-node tests); default: chosen by `tidings.redis.url`. */
  readonly backends?: (nodeId: string) => Backends;
}

/**
 * The composition root: the only place that knows every concrete class. It wires ports to
 * services to transports, and owns the start and stop order.
 */
export class TidingsNode {
  readonly nodeId: string;
  readonly log: Logger;
  readonly config: ConfigService;
  readonly metrics = new Metrics({ defaults: true });
  readonly hub: LocalHub;
  readonly backends: Backends;
  readonly publisher: Publisher;
  readonly remoteBuffer: RemoteBuffer;
  readonly app: FastifyInstance;
  readonly #server;
  readonly #socketIo: SocketIoEndpoint;
  readonly #plainWs: PlainWsEndpoint;
  readonly #diagWs: DiagWsEndpoint;
  readonly #pollRelay: PollRelay;
  /** Where the other nodes reach this one; known once it listens. */
  #advertised = '';
  readonly #expiry: SessionExpiryWatch;
  readonly #readiness: Readiness;
  readonly #drain: HttpDrain;
  /** Called whenever a connection leaves the hub (the shutdown waits for the last one). */
  #onHubRemoved: (() => void) | undefined;
  #unwatch: (() => void) | undefined;
  #stopping: Promise<void> | undefined;
  #address: AddressInfo | undefined;
  #adminSocket: AdminSocket | undefined;

  constructor(opts: NodeOptions) {
    const env = opts.env ?? process.env;
    const loaded = loadConfig(opts.configDir, env);
    const s = loaded.settings;
    this.nodeId = s['tidings.node.id'] || `node-${randomBytes(4).toString('hex')}`;
    const root = opts.log ?? createLogger({ level: s['tidings.log.level'] });
    this.log = root.child({ node: this.nodeId });
    this.backends = opts.backends ? opts.backends(this.nodeId) : s['tidings.redis.url'] ? createBackends(s, this.nodeId, this.log, opts.configDir, this.metrics, () => this.#advertised) : memoryBackends(this.nodeId, undefined, this.log.child({ component: 'bus' }));
    this.config = new ConfigService({ dir: opts.configDir, env, store: this.backends.configStore, log: this.log.child({ component: 'config' }), initial: loaded });

    const settings = () => this.config.settings;
    const sessions = new SessionService(this.backends.sessions, () => settings()['tidings.session.lifetimeSeconds'] * 1000);
    this.#expiry = new SessionExpiryWatch({ get: (id) => sessions.get(id), close: (id) => this.hub.closeSession(id, CLOSE.sessionEnded), log: this.log.child({ component: 'sessions' }) });
    this.hub = new LocalHub({
      added: (c) => this.#expiry.track(c.sessionId, c.sessionExpiresAt),
      removed: (c) => {
        this.#expiry.untrack(c.sessionId);
        this.#onHubRemoved?.();
      },
      sendFailed: (c, err) => this.log.warn({ user: c.user, connection: c.id, transport: c.transport, err: String(err) }, 'an event could not be sent to one connection; the others still got it'),
    });
    this.remoteBuffer = new RemoteBuffer({
      timings: () => ({
        delayDuration: settings()['com.openexchange.websockets.grizzly.remote.delayDuration'],
        maxDelayDuration: settings()['com.openexchange.websockets.grizzly.remote.maxDelayDuration'],
        timerFrequency: settings()['com.openexchange.websockets.grizzly.remote.timerFrequency'],
      }),
      maxPending: () => settings()['tidings.remote.maxPending'],
      send: (nodeId, batch) => this.backends.bus.sendToNode(nodeId, { type: 'deliver', from: this.nodeId, batch }),
      log: this.log.child({ component: 'remote-buffer' }),
      observe: {
        coalesced: () => this.metrics.remoteCoalesced.inc(),
        dropped: (n) => this.metrics.remoteDropped.inc(n),
        flushed: (ms) => this.metrics.remoteFlush.observe(ms / 1000),
      },
    });
    this.metrics.sampleRemotePending(() => this.remoteBuffer.stats().pending);
    const historyLimits = () => ({ size: settings()['tidings.history.size'], ttlMs: settings()['tidings.history.ttlSeconds'] * 1000 });
    const feeds = new Feeds({ log: this.backends.eventLog, limits: historyLimits, logger: this.log.child({ component: 'history' }), metrics: this.metrics });
    this.publisher = new Publisher({
      nodeId: this.nodeId,
      hub: this.hub,
      lookup: this.backends.publishLookup,
      historyLimits,
      backendUp: () => this.backends.registry.registered(),
      fallbackDedupe: new DedupeWindow(),
      remote: this.remoteBuffer,
      dedupeTtlMs: () => settings()['tidings.dedupe.windowSeconds'] * 1000,
      metrics: this.metrics,
      log: this.log.child({ component: 'publisher' }),
    });
    const gate = new HandshakeGate({ sessions, config: this.config, registry: this.backends.registry, nodeId: this.nodeId });
    const sockLog = this.log.child({ component: 'sockets' });
    const maxQueuedBytes = () => settings()['tidings.connections.maxQueuedBytes'];
    this.#socketIo = new SocketIoEndpoint({
      gate, hub: this.hub, registry: this.backends.registry, log: sockLog, metrics: this.metrics, nodeId: this.nodeId, maxQueuedBytes, accepting: () => !this.#stopping,
      pingIntervalMs: s['tidings.socketio.pingIntervalMs'], pingTimeoutMs: s['tidings.socketio.pingTimeoutMs'], maxBodyBytes: s['tidings.http.maxBodyBytes'], feeds,
    });
    // Engine.IO sids name their owner (engine-sid.ts): any node relays a polling request to it, so no balancer affinity is needed.
    this.#pollRelay = new PollRelay({
      nodeId: this.nodeId,
      gate,
      auth: () => relayAuthFor(settings()['tidings.cluster.secret'], settings()['tidings.admin.token']),
      members: new MemberUrls(() => this.backends.registry.members()),
      proxies: () => trustedProxies(settings()['tidings.http.trustedProxies']),
      holdLimitMs: s['tidings.socketio.pingIntervalMs'] + s['tidings.socketio.pingTimeoutMs'] + 10_000,
      relayed: () => this.metrics.relayedPolls.inc(),
      log: this.log.child({ component: 'poll-relay' }),
    });
    this.#plainWs = new PlainWsEndpoint({ gate, hub: this.hub, registry: this.backends.registry, log: sockLog, metrics: this.metrics, maxPayload: s['tidings.http.maxBodyBytes'], maxQueuedBytes, pingIntervalMs: s['tidings.websocket.pingIntervalMs'], feeds });

    const { app, server, handler } = buildHttp({ log: this.log, maxBodyBytes: s['tidings.http.maxBodyBytes'], headersTimeoutMs: s['tidings.http.headersTimeoutMs'] });
    this.app = app;
    this.#server = server;
    this.#drain = new HttpDrain(app);
    // A held long-poll or SSE stream is a request in flight: answered as the drain begins (a poll
    // with what it has, SSE ended; both resume from their offset elsewhere), stop() need not wait
    // for it until the grace deadline.
    this.#drain.onStart(() => {
      const spread = settings()['tidings.shutdown.reconnectSpreadMs'];
      for (const c of [...this.hub.all()]) if (c.transport === 'longpoll' || c.transport === 'sse') c.close(goingAway(Math.floor(Math.random() * (spread + 1))));
    });
    this.#readiness = new Readiness({
      check: async (ms) => {
        const t0 = performance.now();
        const ok = await this.backends.bus.selfCheck(ms);
        // The readiness ping goes through this node's own bus inbox: its time there is the bus's lag.
        if (ok && this.backends.kind === 'redis') this.metrics.busLag.observe((performance.now() - t0) / 1000);
        return ok;
      },
      registered: () => this.backends.registry.registered(), log: this.log });
    registerHealthRoutes(app, { ready: () => this.#readiness.state(), metrics: this.metrics });
    registerSessionRoutes(app, { config: this.config, sessions, limiter: new LoginLimiter(), credentials: new CredentialCheck(), devices: new DeviceCookies(() => settings()['tidings.login.deviceKey']), metrics: this.metrics, endSession: (id) => this.#endSessionEverywhere(id) });
    registerPushRoutes(app, { config: this.config, publisher: this.publisher });
    registerWebRoutes(app);
    const held = { gate, hub: this.hub, registry: this.backends.registry, feeds, metrics: this.metrics, log: this.log.child({ component: 'history' }), config: this.config };
    registerPollRoutes(app, held);
    registerSseRoutes(app, held);
    registerNotifyRoutes(app, { config: this.config, publisher: this.publisher, metrics: this.metrics, log: this.log.child({ component: 'notify' }) });
    registerAdminRoutes(app, {
      config: this.config,
      reloadCluster: () => this.reloadCluster(),
      announceConfigChange: (reason) => this.backends.bus.broadcast({ type: 'config-changed', from: this.nodeId, reason }),
      status: async () => ({ nodeId: this.nodeId, members: await this.backends.registry.members() }),
      volatileStore: this.backends.kind === 'memory',
    });
    const diag = { nodeId: this.nodeId, enabled: () => settings()['tidings.diag.enabled'], clientIp: (req: IncomingMessage) => trustedProxies(settings()['tidings.http.trustedProxies']).clientIp(req), trustsPeer: (req: IncomingMessage) => trustedProxies(settings()['tidings.http.trustedProxies']).fromTrustedPeer(req) };
    registerDiagRoutes(app, diag);
    this.#diagWs = new DiagWsEndpoint(diag);
    dispatch(server, {
      http: handler,
      relay: { handleRequest: (req, res) => this.#pollRelay.handleRequest(req, res), handleUpgrade: (req, socket, head) => this.#pollRelay.handleUpgrade(req, socket, head) },
      socketIo: { handleRequest: (req, res) => void this.#socketIo.handleRequest(req, res), handleUpgrade: (req, socket, head) => void this.#socketIo.handleUpgrade(req, socket, head) },
      plainWs: { handleUpgrade: (req, socket, head) => void this.#plainWs.handleUpgrade(req, socket, head) },
      diagWs: { matches: (url) => DiagWsEndpoint.matches(url), handleUpgrade: (req, socket, head) => this.#diagWs.handleUpgrade(req, socket, head) },
      stopping: () => this.#stopping !== undefined,
    });
  }

  /** Starts backends, then listens; resolves with the bound address. */
  async start(): Promise<AddressInfo> {
    const s = this.config.settings;
    for (const u of this.config.directory.users.values()) {
      if (schemeOf(u.password) === 'PLAIN') {
        this.log.warn('directory.yml holds {PLAIN} passwords: fine for a demo, never for production (npx tidings hash-password)');
        break;
      }
    }
    if (s['tidings.redis.url'] && !s['tidings.login.deviceKey']) this.log.warn('tidings.login.deviceKey is empty: a device cookie is recognised only by the node that issued it, until it restarts; set the same key on every node');
    await this.backends.start();
    await this.config.init();
    this.backends.bus.onMessage(busDispatch({
      nodeId: this.nodeId,
      deliver: (batch) => this.publisher.receive(batch),
      endSession: (sessionId) => void this.hub.closeSession(sessionId, CLOSE.sessionEnded),
      refreshConfig: () => void this.config.refreshStore().catch((e) => this.log.warn({ err: String(e) }, 'could not refresh run-time config values')),
      reload: () => void this.config.reload(),
    }));
    this.config.onChange((changed) => {
      if (changed.some((k) => k.startsWith('com.openexchange.websockets.grizzly.remote.'))) this.remoteBuffer.reconfigure();
      if (changed.includes('tidings.log.level')) this.log.level = this.config.settings['tidings.log.level'];
    });
    await this.app.listen({ host: s['tidings.http.host'], port: s['tidings.http.port'] });
    this.#address = this.#server.address() as AddressInfo;
    // After the TCP port: a second node started by mistake fails on the port, the clearer message.
    if (s['tidings.admin.socket']) {
      try {
        this.#adminSocket = await openAdminSocket({ path: resolvePath(this.config.current.dir, s['tidings.admin.socket']), groupAccess: s['tidings.admin.socketGroupAccess'], handler: (req, res) => this.app.routing(req, res) });
      } catch (e) {
        await this.app.close();
        throw e;
      }
    }
    this.#advertised = advertiseUrl(s['tidings.cluster.advertiseUrl'], this.#address);
    if (s['tidings.config.watch']) this.#unwatch = watchConfigDir(this.config.current.dir, () => void this.reloadCluster(), this.log);
    await this.#readiness.start();
    this.log.info({ host: this.#address.address, port: this.#address.port, backends: this.backends.kind, adminSocket: this.#adminSocket?.path ?? null }, `tidings listening on http://${this.#address.address}:${this.#address.port}`);
    return this.#address;
  }

  /** The local admin socket's path, or null when `tidings.admin.socket` is empty. */
  get adminSocketPath(): string | null {
    return this.#adminSocket?.path ?? null;
  }

  get url(): string {
    if (!this.#address) throw new Error('not started');
    return `http://${this.#address.address}:${this.#address.port}`;
  }

  /** Reloads this node's files and tells every other node to reload theirs. */
  async reloadCluster(): Promise<ReloadOutcome> {
    const r = this.config.reload();
    if (r.ok) await this.backends.bus.broadcast({ type: 'reload', from: this.nodeId }).catch((e) => this.log.warn({ err: String(e) }, 'could not tell the cluster to reload'));
    return r;
  }

  /**
   * Stop within `tidings.shutdown.graceMs`, losing nothing that was accepted: refuse new work (503,
   * upgrades refused), let requests in flight finish, then close every socket with going-away and a
   * spread reconnect hint, gracefully, so each gets what was sent to it first (a polling socket with
   * its next poll). At the deadline whatever is left is cut; then pending remote batches are handed
   * over and the backends released.
   */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#readiness.stop('shutting down');
      const grace = this.config.settings['tidings.shutdown.graceMs'];
      // The tail (force-closing, remote flush, backends) needs a moment of its own.
      const deadline = Date.now() + grace - Math.min(1000, grace / 4);
      this.#unwatch?.();
      this.#drain.start();
      if (!(await this.#drain.idle(deadline))) this.log.warn({ inFlight: this.#drain.inFlight }, 'requests still in flight at the grace deadline; cutting them');
      // Other nodes may hold events for this node's sockets in their remote buffers, offered before
      // this stop began: those are sent within maxDelayDuration and one timer tick.
      if (this.backends.kind !== 'memory' && this.hub.size > 0) {
        const t = this.config.settings;
        await pause(Math.min(deadline - Date.now(), t['com.openexchange.websockets.grizzly.remote.maxDelayDuration'] + t['com.openexchange.websockets.grizzly.remote.timerFrequency'] + 250));
      }
      this.#expiry.stop();
      const spread = this.config.settings['tidings.shutdown.reconnectSpreadMs'];
      for (const c of [...this.hub.all()]) c.close(goingAway(Math.floor(Math.random() * (spread + 1))));
      const closed = (await this.#hubEmpty(deadline)) && (await this.#socketIo.idle(deadline));
      if (!closed) this.log.warn({ open: this.hub.size, engineIo: this.#socketIo.engine.clientsCount }, 'sockets still open at the grace deadline; cutting them');
      this.#plainWs.close();
      this.#diagWs.close();
      await this.#adminSocket?.close();
      await this.#socketIo.close().catch(() => undefined);
      this.#pollRelay.close();
      await this.app.close();
      this.remoteBuffer.stop();
      await this.remoteBuffer.flush();
      await this.backends.stop();
      this.log.info('tidings stopped');
    })();
    return this.#stopping;
  }

  /** Resolves true when the last connection left the hub, false at `deadline`. */
  #hubEmpty(deadline: number): Promise<boolean> {
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.#onHubRemoved = undefined;
        resolve(ok);
      };
      const timer = setTimeout(() => done(false), Math.max(0, deadline - Date.now()));
      this.#onHubRemoved = () => {
        if (this.hub.size === 0) done(true);
      };
      if (this.hub.size === 0) done(true);
    });
  }

  async #endSessionEverywhere(sessionId: string): Promise<void> {
    this.hub.closeSession(sessionId, CLOSE.sessionEnded);
    await this.backends.bus.broadcast({ type: 'session-ended', from: this.nodeId, sessionId });
  }
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}
