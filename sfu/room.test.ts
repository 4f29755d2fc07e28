import type { types } from 'mediasoup';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePortBase } from '../testkit/ports.ts';
import { Room } from './room.ts';
import { WorkerPool } from './worker-pool.ts';

const opus = (ssrc: number): types.RtpParameters => ({
  mid: '0',
  codecs: [{ mimeType: 'audio/opus', payloadType: 111, clockRate: 48000, channels: 2, parameters: {}, rtcpFeedback: [] }],
  headerExtensions: [],
  encodings: [{ ssrc }],
  rtcp: { cname: `c${ssrc}`, reducedSize: true },
});

/** Two simulcast layers, so a consumer has layers to choose from. */
const vp8 = (ssrc: number): types.RtpParameters => ({
  mid: '1',
  codecs: [{ mimeType: 'video/VP8', payloadType: 96, clockRate: 90000, parameters: {}, rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }] }],
  headerExtensions: [],
  encodings: [
    { ssrc, maxBitrate: 150_000 },
    { ssrc: ssrc + 1, maxBitrate: 600_000 },
  ],
  rtcp: { cname: `c${ssrc}`, reducedSize: true },
});

/** A call that may throw before returning its promise, as a promise either way. */
const attempt = <T>(fn: () => Promise<T> | T): Promise<T> => Promise.resolve().then(fn);

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

/**
 * Ownership checks of the room itself (below the signaling service's own checks), on the real
 * mediasoup worker in process. The worker's observers hand the test the real producer and
 * consumer objects, to see that a refused command left them as they were.
 */
describe('Room media ownership', () => {
  const log = pino({ level: 'silent' });
  let pool: WorkerPool;
  let room: Room;
  const events: { to: string[]; type: string }[] = [];
  const producers = new Map<string, types.Producer>();
  const consumers = new Map<string, types.Consumer>();
  let caps: types.RtpCapabilities;
  let aliceMic: string;
  let aliceCam: string;
  let bobMic: string;
  let bobHearsAlice: string;
  let bobSeesAlice: string;

  beforeAll(async () => {
    pool = await WorkerPool.create({ workers: 1, listenIp: '127.0.0.1', announcedAddress: null, portBase: await freePortBase(1), logLevel: 'error' }, log);
    pool.slots[0]!.worker.observer.on('newrouter', (router) =>
      router.observer.on('newtransport', (t) => {
        t.observer.on('newproducer', (p) => producers.set(p.id, p));
        t.observer.on('newconsumer', (c) => consumers.set(c.id, c));
      }),
    );
    const limits = { maxConsumersPerWorker: 500, maxParticipants: 16, maxDevicesPerParticipant: 8, maxTransportsPerPeer: 3 };
    room = await Room.create('call-owner', 0, pool, limits, (to, event) => events.push({ to: to.map((r) => r.address), type: event.type }), log, () => undefined);
    caps = (await room.join('alice:d1', '0xA11CE', 'sig')).rtpCapabilities;
    await room.join('bob:d1', '0xB0B', 'sig');
    const aliceSend = await room.createTransport('alice:d1', 'send');
    const bobSend = await room.createTransport('bob:d1', 'send');
    const bobRecv = await room.createTransport('bob:d1', 'recv');
    aliceMic = await room.produce('alice:d1', aliceSend.id, 'audio', opus(1111), 'mic', false);
    aliceCam = await room.produce('alice:d1', aliceSend.id, 'video', vp8(2222), 'camera', false);
    bobMic = await room.produce('bob:d1', bobSend.id, 'audio', opus(3333), 'mic', false);
    bobHearsAlice = (await room.consume('bob:d1', bobRecv.id, aliceMic, caps)).id;
    bobSeesAlice = (await room.consume('bob:d1', bobRecv.id, aliceCam, caps)).id;
  });
  afterAll(() => {
    room?.close();
    pool?.close();
  });

  it('refuses to close or pause another participant’s producer, which keeps flowing to its consumers', async () => {
    const before = events.length;
    expect(thrown(() => room.closeProducer('bob:d1', aliceMic))).toMatchObject({ code: 'FORBIDDEN' });
    await expect(attempt(() => room.pauseProducer('bob:d1', aliceMic, true))).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await expect(attempt(() => room.pauseProducer('bob:d1', aliceCam, true))).rejects.toMatchObject({ code: 'FORBIDDEN' });
    expect(thrown(() => room.closeProducer('bob:d1', 'no-such-producer'))).toMatchObject({ code: 'NOT_FOUND' });

    for (const id of [aliceMic, aliceCam]) {
      expect(producers.get(id)!.closed).toBe(false);
      expect(producers.get(id)!.paused).toBe(false);
    }
    for (const id of [bobHearsAlice, bobSeesAlice]) {
      expect(consumers.get(id)!.closed).toBe(false);
      expect(consumers.get(id)!.producerPaused).toBe(false);
    }
    expect(room.counts()).toEqual({ peers: 2, producers: 3, consumers: 2 });
    // Nobody was told that Alice's media stopped.
    expect(events.slice(before).map((e) => e.type)).toEqual([]);
    // Bob's own producer is his to pause and close.
    await room.pauseProducer('bob:d1', bobMic, true);
    expect(producers.get(bobMic)!.paused).toBe(true);
    room.closeProducer('bob:d1', bobMic);
    expect(producers.get(bobMic)!.closed).toBe(true);
    expect(room.counts().producers).toBe(2);
  });

  it('refuses to resume or re-layer another participant’s consumer', async () => {
    const hears = consumers.get(bobHearsAlice)!;
    const sees = consumers.get(bobSeesAlice)!;
    expect(sees.type).toBe('simulcast');
    expect(hears.paused).toBe(true); // consumers start paused until their owner resumes them
    await expect(attempt(() => room.resumeConsumer('alice:d1', bobHearsAlice))).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(hears.paused).toBe(true);
    const layers = sees.preferredLayers;
    expect(layers).not.toEqual({ spatialLayer: 0, temporalLayer: 0 });
    await expect(attempt(() => room.setPreferredLayers('alice:d1', bobSeesAlice, 0, 0))).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(sees.preferredLayers).toEqual(layers);
    // Someone not in the call at all.
    await expect(attempt(() => room.resumeConsumer('mallory:d1', bobHearsAlice))).rejects.toMatchObject({ code: 'PEER_NOT_FOUND' });
    expect(hears.paused).toBe(true);

    // The owner can.
    await room.resumeConsumer('bob:d1', bobHearsAlice);
    expect(hears.paused).toBe(false);
    await room.setPreferredLayers('bob:d1', bobSeesAlice, 0, 0);
    expect(sees.preferredLayers).toEqual({ spatialLayer: 0, temporalLayer: 0 });
    expect(hears.closed).toBe(false);
    expect(sees.closed).toBe(false);
  });
});
