import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { LoginLimiter } from '../auth/login-limiter.js';
import { schemeOf } from '../auth/passwords.js';
import { SessionService } from '../auth/session-service.js';
import { ConfigService, type ReloadOutcome } from '../config/config-service.js';
import { loadConfig } from '../config/load-config.js';
import { watchConfigDir } from '../config/watch-config.js';
import { CLOSE } from '../delivery/local-connection.js';
import { LocalHub } from '../delivery/local-hub.js';
import { MemoryDedupeStore } from '../adapters/memory/memory-dedupe-store.js';
import { SessionExpiryWatch } from '../auth/session-expiry-watch.js';
import { Publisher } from '../delivery/publisher.js';
import { RemoteBuffer } from '../delivery/remote-buffer.js';
import { TidingsError } from '../errors.js';
import { buildHttp } from '../http/app.js';
import { refuseUpgrade } from '../http/refuse.js';
import { registerAdminRoutes } from '../http/routes/admin-routes.js';
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
import type { BusMessage } from '../ports/cluster-bus.js';
import { HandshakeGate } from '../sockets/handshake-gate.js';
import { PlainWsEndpoint } from '../sockets/plain-ws-endpoint.js';
import { SocketIoEndpoint } from '../sockets/socketio-endpoint.js';
import { memoryBackends, type Backends } from './backends.js';
import { createBackends } from './create-backends.js';

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
  readonly #expiry: SessionExpiryWatch;
  #ready = { ready: false, reason: 'starting' as string | undefined };
  #readyTimer: NodeJS.Timeout | undefined;
  #unwatch: (() => void) | undefined;
  #stopping: Promise<void> | undefined;
  #address: AddressInfo | undefined;

  constructor(opts: NodeOptions) {
    const env = opts.env ?? process.env;
    const loaded = loadConfig(opts.configDir, env);
    const s = loaded.settings;
    this.nodeId = s['tidings.node.id'] || `node-${randomBytes(4).toString('hex')}`;
    const root = opts.log ?? createLogger({ level: s['tidings.log.level'] });
    this.log = root.child({ node: this.nodeId });
    this.backends = opts.backends ? opts.backends(this.nodeId) : s['tidings.redis.url'] ? createBackends(s, this.nodeId, this.log, opts.configDir) : memoryBackends(this.nodeId);
    this.config = new ConfigService({ dir: opts.configDir, env, store: this.backends.configStore, log: this.log.child({ component: 'config' }), initial: loaded });

    const settings = () => this.config.settings;
    const sessions = new SessionService(this.backends.sessions, () => settings()['tidings.session.lifetimeSeconds'] * 1000);
    this.#expiry = new SessionExpiryWatch({ get: (id) => sessions.get(id), close: (id) => this.hub.closeSession(id, CLOSE.sessionEnded), log: this.log.child({ component: 'sessions' }) });
    this.hub = new LocalHub({ added: (c) => this.#expiry.track(c.sessionId, c.sessionExpiresAt), removed: (c) => this.#expiry.untrack(c.sessionId) });
    this.remoteBuffer = new RemoteBuffer({
      timings: () => ({
        delayDuration: settings()['com.openexchange.websockets.grizzly.remote.delayDuration'],
        maxDelayDuration: settings()['com.openexchange.websockets.grizzly.remote.maxDelayDuration'],
        timerFrequency: settings()['com.openexchange.websockets.grizzly.remote.timerFrequency'],
      }),
      maxPending: () => settings()['tidings.remote.maxPending'],
      send: (nodeId, batch) => this.backends.bus.sendToNode(nodeId, { type: 'deliver', from: this.nodeId, batch }),
      log: this.log.child({ component: 'remote-buffer' }),
    });
    const historyLimits = () => ({ size: settings()['tidings.history.size'], ttlMs: settings()['tidings.history.ttlSeconds'] * 1000 });
    const feeds = new Feeds({ log: this.backends.eventLog, limits: historyLimits, logger: this.log.child({ component: 'history' }) });
    this.publisher = new Publisher({
      nodeId: this.nodeId,
      hub: this.hub,
      lookup: this.backends.appendingLookup,
      historyLimits,
      backendUp: () => this.backends.registry.registered(),
      fallbackDedupe: new MemoryDedupeStore(),
      remote: this.remoteBuffer,
      dedupeTtlMs: () => settings()['tidings.dedupe.windowSeconds'] * 1000,
      metrics: this.metrics,
      log: this.log.child({ component: 'publisher' }),
    });
    const gate = new HandshakeGate({ sessions, config: this.config, registry: this.backends.registry, nodeId: this.nodeId });
    const sockLog = this.log.child({ component: 'sockets' });
    this.#socketIo = new SocketIoEndpoint({
      gate, hub: this.hub, registry: this.backends.registry, log: sockLog, metrics: this.metrics,
      pingIntervalMs: s['tidings.socketio.pingIntervalMs'], pingTimeoutMs: s['tidings.socketio.pingTimeoutMs'], maxBodyBytes: s['tidings.http.maxBodyBytes'], feeds,
    });
    this.#plainWs = new PlainWsEndpoint({ gate, hub: this.hub, registry: this.backends.registry, log: sockLog, metrics: this.metrics, maxPayload: s['tidings.http.maxBodyBytes'], feeds });

    const { app, server } = buildHttp({
      log: this.log,
      maxBodyBytes: s['tidings.http.maxBodyBytes'],
      socketIo: () => (this.#stopping ? null : (req, res) => void this.#socketIo.handleRequest(req, res)),
    });
    this.app = app;
    this.#server = server;
    registerHealthRoutes(app, { ready: () => this.#readiness(), metrics: this.metrics });
    registerSessionRoutes(app, { config: this.config, sessions, limiter: new LoginLimiter(), endSession: (id) => this.#endSessionEverywhere(id) });
    registerPushRoutes(app, { config: this.config, publisher: this.publisher });
    registerWebRoutes(app);
    const held = { gate, hub: this.hub, registry: this.backends.registry, feeds, metrics: this.metrics, log: this.log.child({ component: 'history' }), config: this.config };
    registerPollRoutes(app, held);
    registerSseRoutes(app, held);
    registerNotifyRoutes(app, { config: this.config, publisher: this.publisher, metrics: this.metrics, log: this.log.child({ component: 'notify' }), answerDelayMs: () => Number(env.TIDINGS_TEST_NOTIFY_DELAY_MS ?? 0) });
    registerAdminRoutes(app, {
      config: this.config,
      reloadCluster: () => this.reloadCluster(),
      announceConfigChange: (reason) => this.backends.bus.broadcast({ type: 'config-changed', from: this.nodeId, reason }),
      status: async () => ({ nodeId: this.nodeId, members: await this.backends.registry.members() }),
    });
    server.on('upgrade', (req, socket, head) => this.#onUpgrade(req, socket, head));
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
    await this.backends.start();
    await this.config.init();
    this.backends.bus.onMessage((m) => this.#onBusMessage(m));
    this.config.onChange((changed) => {
      if (changed.some((k) => k.startsWith('com.openexchange.websockets.grizzly.remote.'))) this.remoteBuffer.reconfigure();
      if (changed.includes('tidings.log.level')) this.log.level = this.config.settings['tidings.log.level'];
    });
    await this.app.listen({ host: s['tidings.http.host'], port: s['tidings.http.port'] });
    this.#address = this.#server.address() as AddressInfo;
    if (s['tidings.config.watch']) this.#unwatch = watchConfigDir(this.config.current.dir, () => void this.reloadCluster(), this.log);
    await this.#checkReady();
    this.#readyTimer = setInterval(() => void this.#checkReady(), 2000).unref();
    this.log.info({ host: this.#address.address, port: this.#address.port, backends: this.backends.kind }, `tidings listening on http://${this.#address.address}:${this.#address.port}`);
    return this.#address;
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

  /** Stop accepting, close every socket with "going away", hand over pending remote batches, release backends. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      clearInterval(this.#readyTimer);
      this.#unwatch?.();
      this.#ready = { ready: false, reason: 'shutting down' };
      this.#expiry.stop();
      this.hub.closeAll(CLOSE.goingAway);
      this.#plainWs.close();
      await this.#socketIo.close().catch(() => undefined);
      await this.app.close();
      this.remoteBuffer.stop();
      await this.remoteBuffer.flush();
      await this.backends.stop();
      this.log.info('tidings stopped');
    })();
    return this.#stopping;
  }

  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    if (this.#stopping) return refuseUpgrade(socket, new TidingsError('TIDINGS_SHUTTING_DOWN'));
    const url = req.url ?? '/';
    if (url.startsWith('/socket.io/')) return void this.#socketIo.handleUpgrade(req, socket, head);
    if (url.startsWith('/websockets/') || url === '/websockets' || url.startsWith('/websockets?')) return void this.#plainWs.handleUpgrade(req, socket, head);
    refuseUpgrade(socket, new TidingsError('TIDINGS_NOT_FOUND', `No WebSocket endpoint at ${url.split('?')[0]}`));
  }

  async #endSessionEverywhere(sessionId: string): Promise<void> {
    this.hub.closeSession(sessionId, CLOSE.sessionEnded);
    await this.backends.bus.broadcast({ type: 'session-ended', from: this.nodeId, sessionId });
  }

  #onBusMessage(m: BusMessage): void {
    switch (m.type) {
      case 'deliver':
        this.publisher.receive(m.batch);
        return;
      case 'session-ended':
        this.hub.closeSession(m.sessionId, CLOSE.sessionEnded);
        return;
      case 'config-changed':
        if (m.from !== this.nodeId) void this.config.refreshStore().catch((e) => this.log.warn({ err: String(e) }, 'could not refresh run-time config values'));
        return;
      case 'reload':
        if (m.from !== this.nodeId) this.config.reload();
        return;
      default:
        return;
    }
  }

  /** The last round-trip check, and at once false while this node's registry entries may be missing. */
  #readiness(): { ready: boolean; reason: string | undefined } {
    if (this.#ready.ready && !this.backends.registry.registered()) return { ready: false, reason: 're-registering this node\'s connections' };
    return this.#ready;
  }

  async #checkReady(): Promise<void> {
    if (this.#stopping) return;
    const ok = await this.backends.selfCheck(2000).catch(() => false);
    const was = this.#ready.ready;
    this.#ready = ok ? { ready: true, reason: undefined } : { ready: false, reason: 'no round trip through the cluster backend' };
    if (was !== ok) this.log[ok ? 'info' : 'warn'](`readiness: ${ok ? 'ready' : 'not ready'}`);
  }
}
