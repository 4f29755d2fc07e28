import { pino } from 'pino';
import type { types } from 'mediasoup';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../testkit/media-peer.ts';
import { freePortBase } from '../testkit/ports.ts';
import { SfuService } from './service.ts';
import { WorkerPool } from './worker-pool.ts';

/** Media limits of a call, enforced by the media tier itself (the real mediasoup worker, in process). */
describe('SfuService media limits', () => {
  const log = pino({ level: 'silent' });
  let pool: WorkerPool;
  let service: SfuService;
  const events: { to: string[]; event: { type: string; peerId?: string; producerId?: string } }[] = [];
  let n = 0;
  const newCall = () => `limits-${++n}`;

  const opus = (ssrc: number) =>
    ({ codecs: [{ mimeType: 'audio/opus', payloadType: 100, clockRate: 48000, channels: 2 }], encodings: [{ ssrc }] }) as unknown as types.RtpParameters;
  const vp8 = (ssrc: number) => ({ codecs: [{ mimeType: 'video/VP8', payloadType: 101, clockRate: 90000 }], encodings: [{ ssrc }] }) as unknown as types.RtpParameters;
  const join = (callId: string, peerId: string, address: string) => service.handle('join', { callId, peerId, address, worker: 0, origin: 'sig' });
  const transport = (callId: string, peerId: string, direction: 'send' | 'recv') => service.handle('createTransport', { callId, peerId, direction });
  const code = (p: Promise<unknown>) => p.then(() => 'ok', (e: { code?: string }) => e.code ?? String(e));

  /** `sender` produces a mic track; returns its id and the router's capabilities. */
  async function producing(callId: string, sender: string, address: string) {
    const { rtpCapabilities } = await join(callId, sender, address);
    const send = await transport(callId, sender, 'send');
    const { producerId } = await service.handle('produce', { callId, peerId: sender, transportId: send.id, kind: 'audio', rtpParameters: opus(1000 + n), source: 'mic', paused: false });
    return { producerId, rtpCapabilities, send };
  }

  beforeAll(async () => {
    pool = await WorkerPool.create({ workers: 1, listenIp: '127.0.0.1', announcedAddress: null, portBase: await freePortBase(1), logLevel: 'error' }, log);
    service = new SfuService(pool, 50, log, { maxParticipants: 3, maxDevicesPerParticipant: 3, maxTransportsPerPeer: 3 });
    service.onEvent((_origin, frame) => events.push(frame as (typeof events)[number]));
  });
  // Each test starts with an empty worker, so its consumer counts are its own.
  afterEach(() => service.close());
  afterAll(() => {
    service.close();
    pool.close();
  });

  it('allows one consumer per (peer, producer): a second consume, even a concurrent one, is refused', async () => {
    const callId = newCall();
    const { producerId, rtpCapabilities } = await producing(callId, 'a:d1', '0xA');
    await join(callId, 'b:d1', '0xB');
    const recv = await transport(callId, 'b:d1', 'recv');
    const consume = () => service.handle('consume', { callId, peerId: 'b:d1', transportId: recv.id, producerId, rtpCapabilities });
    const first = await consume();
    await expect(consume()).rejects.toMatchObject({ code: 'DUPLICATE', message: expect.stringContaining(first.id) });
    // A second receive transport does not help.
    const recv2 = await transport(callId, 'b:d1', 'recv');
    await expect(service.handle('consume', { callId, peerId: 'b:d1', transportId: recv2.id, producerId, rtpCapabilities })).rejects.toMatchObject({ code: 'DUPLICATE' });
    expect(service.rooms.get(callId)!.counts().consumers).toBe(1);

    // Two consumes racing on a fresh peer: exactly one wins.
    await join(callId, 'c:d1', '0xC');
    const recvC = await transport(callId, 'c:d1', 'recv');
    const race = await Promise.all([1, 2, 3].map(() => code(service.handle('consume', { callId, peerId: 'c:d1', transportId: recvC.id, producerId, rtpCapabilities }))));
    expect(race.sort()).toEqual(['DUPLICATE', 'DUPLICATE', 'ok']);
    expect(service.rooms.get(callId)!.counts().consumers).toBe(2);
    // Bad capabilities are the client's fault, not an internal error.
    await join(callId, 'c:d1', '0xC');
    const recvC2 = await transport(callId, 'c:d1', 'recv');
    expect(await code(service.handle('consume', { callId, peerId: 'c:d1', transportId: recvC2.id, producerId, rtpCapabilities: { codecs: 'nope' } as never }))).toBe('CANNOT_CONSUME');
  });

  it('caps transports per peer (also when requested concurrently) and producers at one per source', async () => {
    const callId = newCall();
    await join(callId, 'a:d1', '0xA');
    const results = await Promise.all([1, 2, 3, 4, 5].map((i) => code(transport(callId, 'a:d1', i === 1 ? 'send' : 'recv'))));
    expect(results.filter((r) => r === 'ok')).toHaveLength(3);
    expect(results.filter((r) => r === 'LIMIT')).toHaveLength(2);
    await expect(transport(callId, 'a:d1', 'recv')).rejects.toMatchObject({ code: 'LIMIT', message: expect.stringContaining('At most 3 transports') });

    // Joining again starts a fresh peer with a fresh allowance (the old transports are closed).
    await join(callId, 'a:d1', '0xA');
    const send = await transport(callId, 'a:d1', 'send');
    const produce = (source: 'mic' | 'camera' | 'screen', ssrc: number) =>
      service.handle('produce', { callId, peerId: 'a:d1', transportId: send.id, kind: source === 'mic' ? 'audio' : 'video', rtpParameters: source === 'mic' ? opus(ssrc) : vp8(ssrc), source, paused: false });
    const mic = await produce('mic', 11);
    await produce('camera', 12);
    await produce('screen', 13);
    await expect(produce('mic', 14)).rejects.toMatchObject({ code: 'LIMIT' });
    await expect(produce('camera', 15)).rejects.toMatchObject({ code: 'LIMIT' });
    // Closing the first frees its source.
    await service.handle('closeProducer', { callId, peerId: 'a:d1', producerId: mic.producerId });
    expect(await code(produce('mic', 16))).toBe('ok');
  });

  it('replaces a participant’s media peer when it joins from another device: peerLeft, producers closed, no ghost', async () => {
    const callId = newCall();
    const { producerId, rtpCapabilities } = await producing(callId, 'a:phone', '0xA');
    await join(callId, 'b:d1', '0xB');
    const recv = await transport(callId, 'b:d1', 'recv');
    await service.handle('consume', { callId, peerId: 'b:d1', transportId: recv.id, producerId, rtpCapabilities });
    const room = service.rooms.get(callId)!;
    expect(room.counts()).toEqual({ peers: 2, producers: 1, consumers: 1 });
    const before = events.length;

    await join(callId, 'a:laptop', '0xA');
    const after = events.slice(before);
    expect(after).toContainEqual({ to: ['0xB'], event: expect.objectContaining({ type: 'peerLeft', peerId: 'a:phone' }) });
    expect(after).toContainEqual({ to: ['0xB'], event: expect.objectContaining({ type: 'producerClosed', producerId }) });
    expect(after).toContainEqual({ to: ['0xB'], event: expect.objectContaining({ type: 'peerJoined', peerId: 'a:laptop' }) });
    // One peer per person; B's consumer of the closed producer goes with it (the worker reports it).
    await until(() => room.counts().consumers === 0, 2000, 'the consumer of the closed producer to close');
    expect(room.counts()).toEqual({ peers: 2, producers: 0, consumers: 0 });
    expect(pool.slots[0]!.consumers).toBe(0);
    // The replaced device is told so (not "join again", which would take the call back).
    await expect(transport(callId, 'a:phone', 'send')).rejects.toMatchObject({ code: 'REPLACED' });
  });

  it('counts people, not peers, against the participant limit, and caps the devices one person may join from', async () => {
    const callId = newCall();
    await join(callId, 'a:d1', '0xA');
    await join(callId, 'a:d2', '0xA');
    await join(callId, 'b:d1', '0xB');
    await join(callId, 'c:d1', '0xC');
    expect(service.rooms.get(callId)!.counts().peers).toBe(3);
    await expect(join(callId, 'd:d1', '0xD')).rejects.toMatchObject({ code: 'LIMIT', message: expect.stringContaining('3 participants') });
    // Someone who left makes room.
    await service.handle('leave', { callId, peerId: 'c:d1' });
    await join(callId, 'd:d1', '0xD');

    // Devices: A has used d1 and d2; a third is fine, a fourth is refused; a known one is fine.
    await join(callId, 'a:d3', '0xA');
    await expect(join(callId, 'a:d4', '0xA')).rejects.toMatchObject({ code: 'LIMIT', message: expect.stringContaining('devices') });
    await join(callId, 'a:d1', '0xA');
    expect(service.rooms.get(callId)!.counts().peers).toBe(3);

    // New people joining at the same moment cannot overshoot the limit either.
    const burst = newCall();
    await join(burst, 'p:d1', '0xP');
    const joins = await Promise.all(['0xQ', '0xR', '0xS', '0xT'].map((a) => code(join(burst, `${a}:d1`, a))));
    expect(joins.filter((r) => r === 'ok')).toHaveLength(2);
    expect(joins.filter((r) => r === 'LIMIT')).toHaveLength(2);
    expect(service.rooms.get(burst)!.counts().peers).toBe(3);
  });

  it('keeps a worker usable for others while one participant churns devices and repeats consumes', async () => {
    const callId = newCall();
    const { producerId, rtpCapabilities } = await producing(callId, 'v:d1', '0xV');
    const outcomes: string[] = [];
    for (let i = 0; i < 10; i++) {
      const peerId = `m:d${i % 5}`;
      outcomes.push(await code(join(callId, peerId, '0xM')));
      for (let k = 0; k < 4; k++) {
        const t = await code(transport(callId, peerId, 'recv').then(async (r) => service.handle('consume', { callId, peerId, transportId: r.id, producerId, rtpCapabilities })));
        outcomes.push(t);
      }
    }
    expect(outcomes).toContain('LIMIT');
    expect(outcomes).toContain('DUPLICATE');
    // However it tries, the misbehaving participant holds one consumer of the producer.
    expect(service.rooms.get(callId)!.counts().consumers).toBe(1);
    expect(pool.slots[0]!.consumers).toBe(1);
    // A bystander's call still gets media on the same worker.
    const other = newCall();
    const b = await producing(other, 'x:d1', '0xX');
    await join(other, 'y:d1', '0xY');
    const recv = await transport(other, 'y:d1', 'recv');
    expect((await service.handle('consume', { callId: other, peerId: 'y:d1', transportId: recv.id, producerId: b.producerId, rtpCapabilities: b.rtpCapabilities })).id).toBeTruthy();
  });
});
