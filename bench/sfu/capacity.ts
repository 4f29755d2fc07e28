import { createSocket, type Socket } from 'node:dgram';
import * as mediasoup from 'mediasoup';
import type { types } from 'mediasoup';
import { MEDIA_CODECS } from '../../sfu/codecs.ts';

export interface CapacityStep {
  consumers: number;
  workerCpu: number;
  sentPps: number;
  /** Packets/s the worker sent on all consumers (its own counters). */
  forwardedPps: number;
  /** Packets/s that reached the local UDP sink (bounded by this process, not the worker). */
  deliveredPps: number;
  expectedPps: number;
  /** forwarded / expected. */
  forwardRatio: number;
}

async function sentByConsumers(consumers: types.Consumer[]): Promise<number> {
  let total = 0;
  for (const c of consumers) for (const s of await c.getStats()) if (s.type === 'outbound-rtp') total += s.packetCount;
  return total;
}


/**
 * One mediasoup worker, one audio + one video producer fed with synthetic RTP over a
 * PlainTransport, and consumers on PlainTransports sending to a local UDP sink. At each
 * step, the worker's CPU (cores) and the share of expected packets that reached the sink.
 */
export async function measureCapacity(steps: number[], secondsPerStep: number): Promise<CapacityStep[]> {
  const worker = await mediasoup.createWorker({ logLevel: 'error' });
  const router = await worker.createRouter({ mediaCodecs: MEDIA_CODECS });
  const ingress = await router.createPlainTransport({ listenInfo: { protocol: 'udp', ip: '127.0.0.1' }, rtcpMux: true, comedia: true });
  const audio = await ingress.produce({
    kind: 'audio',
    rtpParameters: { codecs: [{ mimeType: 'audio/opus', payloadType: 100, clockRate: 48000, channels: 2 }], encodings: [{ ssrc: 1111 }] },
  });
  const video = await ingress.produce({
    kind: 'video',
    rtpParameters: { codecs: [{ mimeType: 'video/VP8', payloadType: 101, clockRate: 90000 }], encodings: [{ ssrc: 2222 }] },
  });

  const sink = createSocket('udp4');
  let received = 0;
  sink.on('message', () => received++);
  await new Promise<void>((r) => sink.bind(0, '127.0.0.1', r));
  // A deep receive buffer, so losses are the worker's, not this socket's.
  try {
    sink.setRecvBufferSize(32 * 1024 * 1024);
  } catch {
    // capped by net.core.rmem_max; the measured ratio then includes local drops
  }
  const sinkPort = sink.address().port;

  const feeder = createSocket('udp4');
  const sent = { audio: 0, video: 0 };
  const feed = startFeed(feeder, ingress.tuple.localPort, (kind) => sent[kind]++);

  const transports: types.PlainTransport[] = [];
  const consumers: types.Consumer[] = [];
  const out: CapacityStep[] = [];
  try {
    for (const target of steps) {
      while (consumers.length < target) {
        const t = await router.createPlainTransport({ listenInfo: { protocol: 'udp', ip: '127.0.0.1' }, rtcpMux: true, comedia: false });
        await t.connect({ ip: '127.0.0.1', port: sinkPort });
        transports.push(t);
        const producer = consumers.length % 2 === 0 ? video : audio;
        const c = await t.consume({ producerId: producer.id, rtpCapabilities: router.rtpCapabilities });
        consumers.push(c);
      }
      // Key frames are not real VP8, so request none; let counters settle first.
      await sleep(1000);
      const ru0 = await worker.getResourceUsage();
      const f0 = await sentByConsumers(consumers);
      const [r0, a0, v0, t0] = [received, sent.audio, sent.video, Date.now()];
      await sleep(secondsPerStep * 1000);
      const ru1 = await worker.getResourceUsage();
      const secs = (Date.now() - t0) / 1000;
      const forwardedPps = ((await sentByConsumers(consumers)) - f0) / secs;
      const videoConsumers = consumers.filter((c) => c.kind === 'video').length;
      const audioConsumers = consumers.length - videoConsumers;
      // Expected from what was actually fed (the feeder's timer may run slow under load).
      const audioPps = (sent.audio - a0) / secs;
      const videoPps = (sent.video - v0) / secs;
      const expectedPps = round(videoConsumers * videoPps + audioConsumers * audioPps);
      const deliveredPps = (received - r0) / secs;
      out.push({
        consumers: consumers.length,
        workerCpu: round((ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime) / 1000 / secs),
        sentPps: round(audioPps + videoPps),
        forwardedPps: round(forwardedPps),
        deliveredPps: round(deliveredPps),
        expectedPps,
        forwardRatio: round(forwardedPps / expectedPps),
      });
    }
  } finally {
    clearInterval(feed);
    feeder.close();
    sink.close();
    worker.close();
  }
  return out;
}

/** Opus at 50 packets/s and "VP8" at 150 packets/s (30 fps × 5 packets of ~1.1 kB). */
function startFeed(sock: Socket, port: number, onSend: (kind: 'audio' | 'video') => void): NodeJS.Timeout {
  let aSeq = 0;
  let vSeq = 0;
  let tick = 0;
  return setInterval(() => {
    tick++;
    // Every 20 ms: one audio packet and three video packets (150/s).
    sock.send(rtp(100, aSeq++, tick * 960, 1111, 160), port, '127.0.0.1');
    onSend('audio');
    for (let i = 0; i < 3; i++) {
      sock.send(rtp(101, vSeq++, Math.floor(tick / 1.5) * 3000, 2222, 1100, i === 2), port, '127.0.0.1');
      onSend('video');
    }
  }, 20);
}

function rtp(pt: number, seq: number, ts: number, ssrc: number, size: number, marker = false): Buffer {
  const b = Buffer.alloc(12 + size, 0);
  b[0] = 0x80;
  b[1] = (marker ? 0x80 : 0) | pt;
  b.writeUInt16BE(seq & 0xffff, 2);
  b.writeUInt32BE(ts >>> 0, 4);
  b.writeUInt32BE(ssrc, 8);
  // VP8: descriptor (start of partition 0) and a key-frame header, so consumers never wait
  // for a key frame.
  if (pt === 101) Buffer.from([0x10, 0x10, 0x00, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01]).copy(b, 12);
  return b;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (n: number) => Math.round(n * 1000) / 1000;
