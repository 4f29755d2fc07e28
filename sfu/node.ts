import Fastify, { type FastifyInstance } from 'fastify';
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { Config } from '../config/config.ts';
import type { Logger } from '../infra/logger.ts';
import { serveMetrics, type MetricsServer } from '../infra/metrics-server.ts';
import type { RedisClient } from '../infra/redis/connect.ts';
import { RedisCommandServer } from './channel.ts';
import type { SfuRegistry } from './registry/registry.ts';
import { SfuService } from './service.ts';
import { WorkerPool } from './worker-pool.ts';

export interface SfuNode {
  readonly id: string;
  readonly service: SfuService;
  readonly pool: WorkerPool;
  /** Stops taking new calls; returns when running calls ended or the deadline passed. */
  drain(): Promise<void>;
  close(): Promise<void>;
}

export interface SfuOptions {
  config: Config;
  log: Logger;
  registry: SfuRegistry;
  /** Redis connections for the command channel; absent in embedded mode (direct calls). */
  redis?: { cmd: RedisClient; sub: RedisClient };
  /** Serve /healthz and /readyz on PORT and /metrics on METRICS_PORT (standalone SFU nodes). */
  http?: boolean;
}

export async function startSfu({ config, log, registry, redis, http }: SfuOptions): Promise<SfuNode> {
  const id = config.nodeId;
  const pool = await WorkerPool.create(
    { workers: config.sfu.workers, listenIp: config.sfu.listenIp, announcedAddress: config.sfu.announcedAddress, portBase: config.sfu.portBase, logLevel: config.sfu.workerLogLevel },
    log,
  );
  // Media events reach signaling through the command channel (or the in-process client).
  const service = new SfuService(pool, config.sfu.maxConsumersPerWorker, log, {
    maxParticipants: config.calls.maxParticipants,
    maxDevicesPerParticipant: config.calls.maxDevicesPerParticipant,
    maxTransportsPerPeer: config.sfu.maxTransportsPerPeer,
  });
  const server = redis ? new RedisCommandServer(redis.cmd, redis.sub, config.redis.keyPrefix, id, service, log) : null;
  await server?.start();

  let draining = false;
  const beat = async () => {
    await pool.sample();
    await registry.heartbeat(id, service.load(), draining, Date.now());
  };
  await beat();
  const timer = setInterval(() => beat().catch((err: unknown) => log.warn({ err }, 'sfu heartbeat failed')), config.presence.heartbeatMs);
  timer.unref();

  let app: FastifyInstance | null = null;
  let metricsServer: MetricsServer | null = null;
  if (http) {
    const metrics = new Registry();
    collectDefaultMetrics({ register: metrics, prefix: 'blockrtc_sfu_' });
    const labels = ['worker'] as const;
    const gauges = {
      consumers: new Gauge({ name: 'blockrtc_sfu_consumers', help: 'Consumers per worker', labelNames: labels, registers: [metrics] }),
      producers: new Gauge({ name: 'blockrtc_sfu_producers', help: 'Producers per worker', labelNames: labels, registers: [metrics] }),
      rooms: new Gauge({ name: 'blockrtc_sfu_routers', help: 'Call routers per worker', labelNames: labels, registers: [metrics] }),
      cpu: new Gauge({ name: 'blockrtc_sfu_worker_cpu', help: 'Worker CPU use (cores)', labelNames: labels, registers: [metrics] }),
    };
    app = Fastify();
    app.get('/healthz', async () => ({ status: 'ok' }));
    app.get('/readyz', async (_req, reply) => {
      const alive = pool.alive().length;
      const ok = !draining && alive > 0;
      return reply.status(ok ? 200 : 503).send({ status: ok ? 'ready' : draining ? 'draining' : 'no workers', workers: alive });
    });
    const scrape = {
      contentType: metrics.contentType,
      metrics: () => {
        for (const w of service.load()) {
          const l = { worker: String(w.index) };
          gauges.consumers.set(l, w.consumers);
          gauges.producers.set(l, w.producers);
          gauges.rooms.set(l, w.rooms);
          gauges.cpu.set(l, w.cpu);
        }
        return metrics.metrics();
      },
    };
    // On a listener of its own: the port Prometheus scrapes, and nothing else needs.
    metricsServer = await serveMetrics(config.http.host, config.http.metricsPort, () => scrape);
    log.info({ url: metricsServer.url }, 'metrics listening');
    await app.listen({ host: config.http.host, port: config.http.port });
  }
  const address = app?.server.address();
  const url = address && typeof address === 'object' ? `http://${config.http.host}:${address.port}` : null;
  log.info({ node: id, workers: pool.slots.length, portBase: config.sfu.portBase, url, metricsUrl: metricsServer?.url ?? null }, 'sfu node ready');

  let closed = false;
  const node: SfuNode = {
    id,
    service,
    pool,
    async drain() {
      draining = true;
      service.draining = true;
      await beat().catch(() => undefined);
      const deadline = Date.now() + config.drainTimeoutMs;
      log.info({ calls: service.rooms.size, deadlineMs: config.drainTimeoutMs }, 'sfu draining');
      while (service.rooms.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 500));
      // Whoever is still in a call when the deadline passes is moved to another node.
      for (const room of [...service.rooms.values()]) room.abandon('media node shutting down');
      await node.close();
    },
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      await server?.stop();
      service.close();
      pool.close();
      await registry.remove(id).catch(() => undefined);
      await app?.close();
      await metricsServer?.close();
    },
  };
  return node;
}
