import Fastify, { type FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import type { Config } from '../config/config.ts';
import { AttachmentStore } from '../db/attachments.ts';
import type { Database } from '../db/client.ts';
import { ContactStore } from '../db/contacts.ts';
import { MessageStore } from '../db/messages.ts';
import { UserStore } from '../db/users.ts';
import { BlockRtcError } from '../protocol/errors.ts';
import { CallStore } from '../db/calls.ts';
import { RedisSfuClient, type SfuClient } from '../sfu/channel.ts';
import { MemorySfuRegistry } from '../sfu/registry/memory.ts';
import { RedisSfuRegistry } from '../sfu/registry/redis.ts';
import type { SfuRegistry } from '../sfu/registry/registry.ts';
import { CallService } from './call/service.ts';
import { TokenService } from './auth/tokens.ts';
import { createBackends, type Backends } from './backends.ts';
import { ChatService } from './chat/service.ts';
import { GroupCommitWriter } from './chat/writer.ts';
import { authRoutes } from './http/auth.ts';
import { installErrorHandler } from './http/errors.ts';
import { healthRoutes } from './http/health.ts';
import { mediaRoutes } from './http/media.ts';
import { webAppRoutes } from './http/webapp.ts';
import { originAllowed } from './http/origin.ts';
import type { Logger } from '../infra/logger.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { PresenceService } from './presence/service.ts';
import { Sessions } from './sessions.ts';
import { Dispatcher, type Handlers } from './ws/dispatch.ts';
import type { ResultMap } from '../protocol/index.ts';
import { Gateway } from './ws/gateway.ts';

export interface SignalingNode {
  readonly url: string;
  readonly app: FastifyInstance;
  readonly metrics: Metrics;
  readonly backends: Backends;
  /** Refuses new work, tells clients to reconnect elsewhere, finishes writes; bounded by DRAIN_TIMEOUT_MS. */
  drain(reason?: string): Promise<void>;
  close(): Promise<void>;
}

export interface SignalingOptions {
  config: Config;
  database: Database;
  log: Logger;
  /** Lets other components (web app) add routes before listening. */
  extend?: (app: FastifyInstance) => void | Promise<void>;
  /** Media plane; by default reached through Redis (embedded mode passes in-process ones). */
  media?: { sfu: SfuClient; registry: SfuRegistry };
  /** Shared backends (embedded mode shares its in-process bus with the SFU). */
  backends?: Backends;
}

/** The composition root of a signaling node. */
export async function startSignaling({ config, database, log, extend, media, backends: shared }: SignalingOptions): Promise<SignalingNode> {
  const metrics = createMetrics();
  const backends = shared ?? createBackends(config, log);
  const db = database.db;
  const users = new UserStore(db);
  const messages = new MessageStore(database);
  const contacts = new ContactStore(db);
  const attachments = new AttachmentStore(db);
  const tokens = new TokenService(config.auth.jwtSecret, config.auth.tokenTtlSec);
  const writer = new GroupCommitWriter(new MessageStore(database.writer), metrics);
  const sessions = new Sessions(backends.bus, metrics, log, config.ws.maxBufferedBytes);
  const chat = new ChatService({ config, messages, attachments, writer, bus: backends.bus, limiter: backends.limiter, metrics, log });
  const presence = new PresenceService({ store: backends.presence, contacts, messages, users, bus: backends.bus, log });

  const registry =
    media?.registry ??
    (backends.redis ? new RedisSfuRegistry(backends.redis, config.redis.keyPrefix, config.presence.staleMs, config.sfu.maxConsumersPerWorker) : new MemorySfuRegistry(config.presence.staleMs, config.sfu.maxConsumersPerWorker));
  const sfu =
    media?.sfu ??
    (backends.redis && backends.sub
      ? await RedisSfuClient.create(backends.redis, backends.sub, config.redis.keyPrefix, config.nodeId, config.sfu.commandTimeoutMs)
      : { request: () => Promise.reject(new BlockRtcError('MEDIA_UNAVAILABLE')), close: async () => undefined });
  const calls = new CallService({ config, calls: new CallStore(db), registry, sfu, bus: backends.bus, log });
  calls.start();

  let draining = false;
  const handlers: Handlers = {
    'chat.send': (c, r) => chat.send(c, r),
    'chat.history': (c, r) => chat.history(c, r),
    'chat.sync': (c, r) => chat.sync(c, r),
    'chat.delivered': (c, r) => chat.delivered(c, r),
    'chat.read': (c, r) => chat.read(c, r),
    'chat.typing': (c, r) => chat.typing(c, r),
    'contacts.list': (c) => presence.listContacts(c),
    'contacts.add': (c, r) => presence.addContact(c, r),
    'presence.query': async (_c, r) => ({ presence: await presence.query(r.addresses) }),
    'session.refresh': async (c) => {
      const t = tokens.issue(c.address);
      c.tokenExpiresAt = t.expiresAt;
      return { token: t.token, expiresAt: new Date(t.expiresAt).toISOString() };
    },
    'call.start': (c, r) => calls.startCall(c, r),
    'call.accept': (c, r) => calls.accept(c, r),
    'call.reject': (c, r) => calls.reject(c, r),
    'call.cancel': (c, r) => calls.cancel(c, r),
    'call.join': (c, r) => calls.join(c, r),
    'call.leave': (c, r) => calls.leave(c, r),
    'call.history': (c, r) => calls.history(c, r),
    'call.createTransport': (c, r) => calls.media(c, r.callId, 'createTransport', { direction: r.direction }) as Promise<ResultMap['call.createTransport']>,
    'call.connectTransport': (c, r) => calls.media(c, r.callId, 'connectTransport', { transportId: r.transportId, dtlsParameters: r.dtlsParameters as never }),
    'call.restartIce': (c, r) => calls.media(c, r.callId, 'restartIce', { transportId: r.transportId }) as Promise<ResultMap['call.restartIce']>,
    'call.produce': (c, r) => calls.media(c, r.callId, 'produce', { transportId: r.transportId, kind: r.kind, rtpParameters: r.rtpParameters as never, source: r.source, paused: r.paused }),
    'call.pauseProducer': (c, r) => calls.media(c, r.callId, 'pauseProducer', { producerId: r.producerId, paused: r.paused }),
    'call.closeProducer': (c, r) => calls.media(c, r.callId, 'closeProducer', { producerId: r.producerId }),
    'call.consume': (c, r) => calls.media(c, r.callId, 'consume', { transportId: r.transportId, producerId: r.producerId, rtpCapabilities: r.rtpCapabilities as never }) as Promise<ResultMap['call.consume']>,
    'call.resumeConsumer': (c, r) => calls.media(c, r.callId, 'resumeConsumer', { consumerId: r.consumerId }),
    'call.setPreferredLayers': (c, r) =>
      calls.media(c, r.callId, 'setPreferredLayers', { consumerId: r.consumerId, spatialLayer: r.spatialLayer, ...(r.temporalLayer !== undefined ? { temporalLayer: r.temporalLayer } : {}) }),
  };
  const dispatcher = new Dispatcher(handlers, config.limits.framesPerSec, metrics, log);
  const gateway = new Gateway(
    config,
    tokens,
    backends.limiter,
    dispatcher,
    {
      opened: async (conn) => {
        await sessions.add(conn);
        await presence.connected(conn);
      },
      closed: async (conn) => {
        // While draining, the process leaves its presence records to the sweep of the
        // other nodes, so users who reconnect elsewhere never flicker offline.
        calls.connectionClosed(conn);
        await sessions.remove(conn, draining);
        if (!draining) await presence.disconnected(conn);
      },
    },
    metrics,
    log,
  );

  const app = Fastify({ trustProxy: config.http.trustProxy, bodyLimit: 16 * 1024 });
  installErrorHandler(app, log);
  app.addHook('onRequest', async (req, reply) => {
    const origin = req.headers.origin;
    if (!originAllowed(origin, config.http.allowedOrigins)) throw new BlockRtcError('ORIGIN_NOT_ALLOWED');
    if (origin) {
      void reply
        .header('Access-Control-Allow-Origin', origin)
        .header('Vary', 'Origin')
        .header('Access-Control-Allow-Headers', 'authorization, content-type')
        .header('Access-Control-Allow-Methods', 'GET, POST, OPTIONS')
        .header('Access-Control-Max-Age', '600');
      if (req.method === 'OPTIONS') return reply.status(204).send();
    }
  });
  authRoutes(app, { config, nonces: backends.nonces, tokens, users, limiter: backends.limiter, metrics });
  mediaRoutes(app, { config, tokens, attachments, limiter: backends.limiter, metrics });
  healthRoutes(app, { draining: () => draining, checks: { database: () => database.ping(), ...(backends.kind === 'redis' ? { redis: () => backends.ping() } : {}) } }, metrics);
  webAppRoutes(app, config);
  if (extend) await extend(app);

  app.server.on('upgrade', (req, socket, head) => gateway.handleUpgrade(req, socket, head));
  await app.listen({ host: config.http.host, port: config.http.port });
  const { port } = app.server.address() as AddressInfo;
  const url = `http://${config.http.host.includes(':') ? `[${config.http.host}]` : config.http.host}:${port}`;

  // Housekeeping: one timer for all connections (token refresh, liveness pings) and the
  // presence heartbeat/sweep.
  const refreshBefore = Math.max(5_000, config.auth.tokenTtlSec * 250);
  let lastPing = Date.now();
  const tick = setInterval(() => {
    const now = Date.now();
    const pingRound = now - lastPing >= config.ws.pingIntervalMs;
    if (pingRound) lastPing = now;
    sessions.forEach((conn) => {
      if (conn.closed) return;
      if (pingRound) {
        if (!conn.alive) return void conn.ws.terminate();
        conn.alive = false;
        conn.ws.ping();
      }
      if (conn.tokenExpiresAt - now < refreshBefore) {
        const t = tokens.issue(conn.address);
        conn.tokenExpiresAt = t.expiresAt;
        conn.event('session.token', { token: t.token, expiresAt: new Date(t.expiresAt).toISOString() });
      }
    });
  }, 1000);
  tick.unref();

  const beat = async () => {
    const now = Date.now();
    await backends.presence.heartbeat(now);
    for (const { user, lastSeen } of await backends.presence.sweep(now)) await presence.wentOffline(user, lastSeen);
  };
  const heartbeat = setInterval(() => beat().catch((err: unknown) => log.warn({ err }, 'presence heartbeat failed')), config.presence.heartbeatMs);
  heartbeat.unref();
  await beat().catch((err: unknown) => log.warn({ err }, 'first presence heartbeat failed'));

  log.info({ url, backends: backends.kind, database: database.kind }, 'signaling node listening');

  let closed = false;
  const node: SignalingNode = {
    url,
    app,
    metrics,
    backends,
    async drain(reason = 'node shutting down') {
      if (draining) return;
      draining = true;
      gateway.draining = true;
      metrics.draining.set(1);
      clearInterval(heartbeat);
      const deadline = Date.now() + config.drainTimeoutMs;
      log.info({ connections: sessions.size, deadlineMs: config.drainTimeoutMs }, 'draining');
      const conns = sessions.all();
      for (const c of conns) c.event('session.draining', { reason, reconnectInMs: 0 });
      // Requests already accepted finish and are answered before the sockets close.
      await Promise.race([writer.flushed(), sleep(Math.max(0, deadline - Date.now()))]);
      // Spread the closes a little so the other nodes are not hit by one wall of reconnects.
      const spread = Math.min(2000, Math.max(0, (deadline - Date.now()) / 2));
      const step = conns.length > 1 ? spread / conns.length : 0;
      for (let i = 0; i < conns.length; i++) {
        conns[i]!.close(1012, 'draining');
        if (step >= 1 && i % 100 === 99) await sleep(step * 100);
      }
      await node.close();
    },
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(tick);
      clearInterval(heartbeat);
      calls.stop();
      for (const c of sessions.all()) c.ws.terminate();
      await writer.flushed();
      await app.close();
      await sfu.close();
      if (!shared) await backends.close();
    },
  };
  return node;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
