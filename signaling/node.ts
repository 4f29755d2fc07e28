import Fastify, { type FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import type { Config } from '../config/config.ts';
import { AttachmentStore } from '../db/attachments.ts';
import { BlockStore } from '../db/blocks.ts';
import { CallStore } from '../db/calls.ts';
import type { Database } from '../db/client.ts';
import { ContactStore } from '../db/contacts.ts';
import { GroupStore } from '../db/groups.ts';
import { MessageStore } from '../db/messages.ts';
import { UserStore } from '../db/users.ts';
import type { Logger } from '../infra/logger.ts';
import type { SfuService } from '../sfu/service.ts';
import { sessionHandlers } from './auth/handlers.ts';
import { SessionService } from './auth/session-service.ts';
import { TokenService } from './auth/tokens.ts';
import { createBackends, createMediaClient, type Backends } from './backends.ts';
import { callHandlers } from './call/handlers.ts';
import { createChain, type Chain } from './chain/create.ts';
import { ensHandlers } from './chain/handlers.ts';
import { CallService } from './call/service.ts';
import { chatHandlers } from './chat/handlers.ts';
import { ChatService } from './chat/service.ts';
import { GroupCommitWriter } from './chat/writer.ts';
import { ReceiptWriter } from './chat/receipts.ts';
import { drainConnections } from './drain.ts';
import { GroupFanout } from './group/fanout.ts';
import { groupHandlers } from './group/handlers.ts';
import { GateKeeper } from './group/gate-keeper.ts';
import { GroupService } from './group/service.ts';
import { Events } from './events.ts';
import { startHousekeeping } from './housekeeping.ts';
import { authRoutes } from './http/auth.ts';
import { installCors } from './http/cors.ts';
import { frameworkErrors, installErrorHandler } from './http/errors.ts';
import { healthRoutes } from './http/health.ts';
import { mediaRoutes } from './http/media.ts';
import { proxyTrust } from './http/origin.ts';
import { webAppRoutes } from './http/webapp.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { presenceHandlers } from './presence/handlers.ts';
import { PresenceService } from './presence/service.ts';
import { requestsHandlers } from './requests/handlers.ts';
import { RequestsService } from './requests/service.ts';
import { createRelations } from './requests/wire.ts';
import { Connections } from './connections.ts';
import { Dispatcher, type Handlers } from './ws/dispatch.ts';
import { Gateway } from './ws/gateway.ts';

export interface SignalingNode {
  readonly url: string;
  readonly app: FastifyInstance;
  readonly metrics: Metrics;
  readonly backends: Backends;
  /** Chain reads: contract-wallet sign-in, ENS names, token gates. */
  readonly chain: Chain;
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
  /** Shared backends (embedded mode shares them with its SFU node); closed by the owner. */
  backends?: Backends;
  /** An SFU node in this process (embedded mode without Redis). */
  localSfu?: { id: string; service: SfuService };
}

/** The composition root of a signaling node: it wires; the parts do the work. */
export async function startSignaling({ config, database, log, extend, backends: shared, localSfu }: SignalingOptions): Promise<SignalingNode> {
  const metrics = createMetrics();
  const backends = shared ?? createBackends(config, log);
  const db = database.db;
  const users = new UserStore(db);
  const messages = new MessageStore(database);
  const contacts = new ContactStore(db);
  const attachments = new AttachmentStore(db);
  const tokens = new TokenService(config.auth.jwtSecret, config.auth.tokenTtlSec);
  const events = new Events(backends.bus, log, metrics);
  const writer = new GroupCommitWriter(new MessageStore(database.writer), metrics, 500, 2, log);
  const connections = new Connections(backends.bus, metrics, log, config.ws.maxBufferedBytes);
  const auth = new SessionService(
    backends.authSessions,
    tokens,
    { maxAgeSec: config.auth.sessionMaxAgeSec, maxConnectionsPerUser: config.auth.maxConnectionsPerUser },
    connections,
  );
  const blocks = new BlockStore(db);
  const relations = createRelations({ bus: backends.bus, connections, blocks, contacts, log });
  const groupStore = new GroupStore(database);
  const fanout = new GroupFanout({ bus: backends.bus, connections, activeGroupIds: (a) => groupStore.activeGroupIds(a), metrics, log });
  const chain = createChain(config, log);
  // Revocations reach the call service, created below (a revocation never comes before start-up ends).
  let calls: CallService | null = null;
  const gates = new GateKeeper({
    groups: groupStore,
    access: chain.access,
    recheckSec: config.chain.gateRecheckSec,
    revoke: async (g, a, reason) => {
      const call = await groupStore.activeCall(g);
      if (await groups.removeForGate(g, a, reason)) await calls?.removeFromGroupCall(g, call?.callId ?? null, a);
    },
    log,
  });
  const groups = new GroupService({ config, groups: groupStore, blockersOf: (adder, invitees) => blocks.blockersOf(adder, invitees), attachments, writer, events, fanout, gates, limiter: backends.limiter, metrics, log });
  const chat = new ChatService({
    config,
    messages,
    // On the writer's connection: receipt batches and message inserts update the same
    // conversation rows (unread counts); run concurrently on two connections they deadlock,
    // and each deadlock stalls both for PostgreSQL's deadlock_timeout. In one queue they never wait on each other.
    receipts: new ReceiptWriter(new MessageStore(database.writer)),
    attachments,
    writer,
    events,
    limiter: backends.limiter,
    metrics,
    relations,
    log,
    groupSync: (a, after, limit) => groups.since(a, after, limit),
  });
  const presence = new PresenceService({ store: backends.presence, contacts, messages, users, events, relations, log });
  const requests = new RequestsService({ contacts, blocks, presence, relations, events });
  const sfu = await createMediaClient(config, backends, localSfu);
  calls = new CallService({
    config,
    calls: new CallStore(db),
    registry: backends.registry,
    sfu,
    events,
    limiter: backends.limiter,
    metrics,
    relations,
    log,
    isGroupMember: (g, a) => groups.isActiveMember(g, a),
    groupGate: (g, a) => gates.requireForCall(g, a),
  });
  calls.start();
  gates.start();

  let draining = false;
  /** Disconnect bookkeeping still running: closing waits for it before the stores go. */
  const disconnecting = new Set<Promise<void>>();
  const handlers: Handlers = {
    ...chatHandlers(chat),
    ...presenceHandlers(presence),
    ...sessionHandlers(auth),
    ...callHandlers(calls),
    ...requestsHandlers(requests),
    ...groupHandlers(groups),
    ...ensHandlers(chain.ens),
    'group.call': (c, r) => calls.startGroupCall(c, r, { requireActive: (g, a) => groups.requireActive(g, a), activeCall: (g) => groupStore.activeCall(g) }),
  };
  const dispatcher = new Dispatcher(handlers, config.limits.framesPerSec, metrics, log);
  const gateway = new Gateway(
    config,
    auth,
    backends.limiter,
    dispatcher,
    {
      opened: async (conn) => {
        await connections.add(conn);
        // Relation notes published while this user had no connection here never came.
        relations.forget(conn.address);
        // Its groups' channels are subscribed before the client hears hello, like its own.
        await Promise.all([fanout.connected(conn.address), presence.connected(conn)]);
        // Closed while this ran: the close hook may have run before these records existed.
        if (conn.closed) {
          fanout.disconnected(conn.address);
          if (!draining) await presence.disconnected(conn);
        }
        gates.connected(conn.address);
      },
      closed: (conn) => {
        const done = (async () => {
          // While draining, the process leaves its presence records to the sweep of the
          // other nodes, so users who reconnect elsewhere never flicker offline.
          calls.connectionClosed(conn);
          await connections.remove(conn, draining);
          fanout.disconnected(conn.address);
          if (!draining) await presence.disconnected(conn);
        })();
        disconnecting.add(done);
        return done.finally(() => disconnecting.delete(done));
      },
    },
    metrics,
    log,
  );

  // The same trust function as clientIp(): request.ip and the limits' key always agree.
  const app = Fastify({ trustProxy: proxyTrust(config.http.trustProxy), bodyLimit: 16 * 1024, frameworkErrors });
  installErrorHandler(app, log);
  installCors(app, config.http.allowedOrigins);
  authRoutes(app, { config, nonces: backends.nonces, sessions: auth, users, limiter: backends.limiter, metrics, wallets: chain.signatures });
  mediaRoutes(app, {
    config,
    sessions: auth,
    attachments,
    limiter: backends.limiter,
    metrics,
    groups: {
      isActiveMember: (g, a) => groups.isActiveMember(g, a),
      canSee: (id, g, a) => groupStore.canSeeAttachment(id, g, a),
    },
  });
  healthRoutes(app, { draining: () => draining, checks: { database: () => database.ping(), ...(backends.kind === 'redis' ? { redis: () => backends.ping() } : {}) } });
  webAppRoutes(app, config);
  if (extend) await extend(app);

  app.server.on('upgrade', (req, socket, head) => gateway.handleUpgrade(req, socket, head));
  await app.listen({ host: config.http.host, port: config.http.port });
  const { port } = app.server.address() as AddressInfo;
  const url = `http://${config.http.host.includes(':') ? `[${config.http.host}]` : config.http.host}:${port}`;
  const housekeeping = await startHousekeeping({ config, connections, auth, attachments, presenceStore: backends.presence, presence, log });
  log.info({ url, backends: backends.kind, database: database.kind }, 'signaling node listening');

  let closed = false;
  const node: SignalingNode = {
    url,
    app,
    metrics,
    backends,
    chain,
    async drain(reason = 'node shutting down') {
      if (draining) return;
      draining = true;
      gateway.draining = true;
      metrics.draining.set(1);
      housekeeping.stopHeartbeat();
      await drainConnections({ connections, writesDone: () => writer.flushed(), deadline: Date.now() + config.drainTimeoutMs, reason, log });
      await node.close();
    },
    async close() {
      if (closed) return;
      closed = true;
      housekeeping.stop();
      gates.stop();
      calls.stop();
      events.stop();
      // Connections cut now are the process's own leaving (as when draining): their presence
      // is left to the other nodes' sweep, not announced through stores about to close.
      draining = true;
      for (const c of connections.all()) c.ws.terminate();
      await writer.flushed();
      await Promise.allSettled([...disconnecting]);
      await app.close();
      await sfu.close();
      chain.close();
      if (!shared) await backends.close();
    },
  };
  return node;
}
