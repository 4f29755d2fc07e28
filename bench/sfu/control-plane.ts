import * as mediasoup from 'mediasoup';
import type { types } from 'mediasoup';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { MEDIA_CODECS } from '../../sfu/codecs.ts';
import { RedisCommandServer, RedisSfuClient } from '../../sfu/channel.ts';
import { SfuService } from '../../sfu/service.ts';
import { WorkerPool } from '../../sfu/worker-pool.ts';

export interface ControlPlaneResult {
  consumers: number;
  /** mediasoup's own transport.consume(), ms per consumer. */
  rawConsumeMs: Percentiles;
  /** The same through SfuService (authorization, bookkeeping), in process. */
  serviceConsumeMs: Percentiles;
  /** Through the Redis command channel, as signaling nodes reach an SFU node. */
  redisConsumeMs: Percentiles;
  /** Added by our control plane per consumer (p50, Redis path − raw). */
  overheadMsP50: number;
}

export interface Percentiles {
  p50: number;
  p99: number;
  mean: number;
}

const videoParams: types.RtpParameters = {
  codecs: [{ mimeType: 'video/VP8', payloadType: 101, clockRate: 90000, rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }] }],
  encodings: [{ ssrc: 4444 }],
};

/** Cost of creating consumers: raw mediasoup vs. our service, in process and over Redis. */
export async function measureControlPlane(consumers: number, redisUrl: string, prefix: string): Promise<ControlPlaneResult> {
  // Raw mediasoup baseline.
  const worker = await mediasoup.createWorker({ logLevel: 'error' });
  const router = await worker.createRouter({ mediaCodecs: MEDIA_CODECS });
  const send = await router.createWebRtcTransport({ listenInfos: [{ protocol: 'udp', ip: '127.0.0.1' }] });
  const producer = await send.produce({ kind: 'video', rtpParameters: videoParams });
  const raw: number[] = [];
  for (let i = 0; i < consumers; i++) {
    const t = await router.createWebRtcTransport({ listenInfos: [{ protocol: 'udp', ip: '127.0.0.1' }] });
    const t0 = performance.now();
    await t.consume({ producerId: producer.id, rtpCapabilities: router.rtpCapabilities, paused: true });
    raw.push(performance.now() - t0);
  }
  worker.close();

  // Through SfuService, in process and over Redis.
  const log = pino({ level: 'error' });
  const pool = await WorkerPool.create({ workers: 1, listenIp: '127.0.0.1', announcedAddress: null, portBase: 46000 + Math.floor(Math.random() * 1000), logLevel: 'error' }, log);
  const service = new SfuService(pool, 100_000, log);
  const cmd = new Redis(redisUrl);
  const sub = new Redis(redisUrl);
  const server = new RedisCommandServer(cmd, sub, prefix, 'bench-sfu', service, log);
  await server.start();
  const clientSub = new Redis(redisUrl);
  const client = await RedisSfuClient.create(cmd, clientSub, prefix, 'bench-signaling', 10_000);
  const callId = 'bench-call';
  const { rtpCapabilities } = await service.handle('join', { callId, peerId: 'producer', address: '0xP', worker: 0, origin: 'bench-signaling' });
  const st = await service.handle('createTransport', { callId, peerId: 'producer', direction: 'send' });
  const { producerId } = await service.handle('produce', { callId, peerId: 'producer', transportId: st.id, kind: 'video', rtpParameters: videoParams, source: 'camera', paused: false });
  const viaService: number[] = [];
  const viaRedis: number[] = [];
  for (let i = 0; i < consumers; i++) {
    const peerId = `viewer-${i}`;
    await service.handle('join', { callId, peerId, address: `0xV${i}`, worker: 0, origin: 'bench-signaling' });
    const rt = await service.handle('createTransport', { callId, peerId, direction: 'recv' });
    const rt2 = await service.handle('createTransport', { callId, peerId, direction: 'recv' });
    let t0 = performance.now();
    await service.handle('consume', { callId, peerId, transportId: rt.id, producerId, rtpCapabilities });
    viaService.push(performance.now() - t0);
    t0 = performance.now();
    await client.request('bench-sfu', 'consume', { callId, peerId, transportId: rt2.id, producerId, rtpCapabilities });
    viaRedis.push(performance.now() - t0);
  }
  await client.close();
  await server.stop();
  service.close();
  pool.close();
  for (const r of [cmd, sub, clientSub]) r.disconnect();
  const pr = percentiles(raw);
  const pd = percentiles(viaRedis);
  return { consumers, rawConsumeMs: pr, serviceConsumeMs: percentiles(viaService), redisConsumeMs: pd, overheadMsP50: round(pd.p50 - pr.p50) };
}

export function percentiles(xs: number[]): Percentiles {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0;
  return { p50: round(at(0.5)), p99: round(at(0.99)), mean: round(s.reduce((a, b) => a + b, 0) / Math.max(1, s.length)) };
}

const round = (n: number) => Math.round(n * 1000) / 1000;
