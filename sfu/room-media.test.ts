import { pino } from 'pino';
import type { types } from 'mediasoup';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { freePortBase } from '../testkit/ports.ts';
import type { MediaEvent } from '../protocol/sfu.ts';
import { Room, type Recipient } from './room.ts';
import { WorkerPool, type WorkerSlot } from './worker-pool.ts';

/** A room on two real mediasoup workers, in process. */
describe('Room', () => {
  const log = pino({ level: 'silent' });
  let pool: WorkerPool;
  let events: { to: string[]; ev: string; data: Record<string, unknown> }[] = [];
  // Media events, named as the client events they become, so assertions read like the wire.
  const CLIENT_EVENT: Record<MediaEvent['type'], string> = {
    peerJoined: 'call.peerJoined',
    peerLeft: 'call.peerLeft',
    producerAdded: 'call.producer',
    producerClosed: 'call.producerClosed',
    producerPaused: 'call.producerState',
    activeSpeaker: 'call.activeSpeaker',
    rejoin: 'call.rejoin',
  };
  const emit = (to: Recipient[], event: MediaEvent) => {
    const { type, ...rest } = event;
    const data = (event.type === 'producerAdded' ? event.producer : rest) as Record<string, unknown>;
    events.push({ to: to.map((r) => r.address), ev: CLIENT_EVENT[type], data });
  };
  let calls = 0;
  const closedRooms: Room[] = [];
  const open: Room[] = [];
  const make = async (worker = 0, maxConsumers = 100) => {
    const limits = { maxConsumersPerWorker: maxConsumers, maxParticipants: 16, maxDevicesPerParticipant: 8, maxTransportsPerPeer: 10 };
    const room = await Room.create(`call-${++calls}`, worker, pool, limits, emit, log, (r) => closedRooms.push(r));
    open.push(room);
    return room;
  };
  const named = (ev: string) => events.filter((e) => e.ev === ev);
  let ssrc = 1000;
  const audio = (): types.RtpParameters => ({
    codecs: [{ mimeType: 'audio/opus', payloadType: 111, clockRate: 48000, channels: 2, parameters: {}, rtcpFeedback: [] }],
    headerExtensions: [],
    encodings: [{ ssrc: ++ssrc }],
    rtcp: { cname: 'room-test' },
  });
  const video = (): types.RtpParameters => ({
    codecs: [{ mimeType: 'video/VP8', payloadType: 96, clockRate: 90000, parameters: {}, rtcpFeedback: [] }],
    headerExtensions: [],
    encodings: [{ ssrc: ++ssrc }],
    rtcp: { cname: 'room-test' },
  });
  const saved: Pick<WorkerSlot, 'consumers' | 'producers' | 'alive'>[] = [];
  const slots = () => pool.slots;

  beforeAll(async () => {
    pool = await WorkerPool.create({ workers: 2, listenIp: '127.0.0.1', announcedAddress: null, portBase: await freePortBase(2), logLevel: 'error' }, log);
    for (const s of pool.slots) saved.push({ consumers: s.consumers, producers: s.producers, alive: s.alive });
  });
  afterEach(() => {
    for (const r of open.splice(0)) r.close();
    pool.slots.forEach((s, i) => Object.assign(s, saved[i]));
    events = [];
    vi.restoreAllMocks();
  });
  afterAll(() => {
    pool.close();
  });

  /** Joins a peer and gives it a send and a recv transport. */
  const peer = async (room: Room, id: string, address: string) => {
    const joined = await room.join(id, address, 'sig');
    const send = await room.createTransport(id, 'send');
    const recv = await room.createTransport(id, 'recv');
    return { joined, send: send.id, recv: recv.id };
  };

  it('starts on the asked worker, or the least loaded live one, and refuses with none alive', async () => {
    expect((await make(1)).primary).toBe(1);
    slots()[0]!.producers = 3;
    expect((await make(7)).primary).toBe(1);
    slots()[0]!.producers = 0;
    slots()[1]!.consumers = 2;
    expect((await make(7)).primary).toBe(0);
    // Equal load: the first; load counts producers as well as consumers.
    slots()[1]!.consumers = 0;
    expect((await make(7)).primary).toBe(0);
    Object.assign(slots()[0]!, { consumers: 1, producers: 0 });
    Object.assign(slots()[1]!, { consumers: 1, producers: 1 });
    expect((await make(7)).primary).toBe(0);
    slots()[1]!.alive = false;
    const r = await make(1);
    expect(r.primary).toBe(0);
    expect(r.workers).toEqual([0]);
    slots()[0]!.alive = false;
    await expect(make(0)).rejects.toMatchObject({ code: 'INTERNAL', message: 'no live worker' });
  });

  it('counts its router on the worker until it closes, once', async () => {
    const rooms = slots()[1]!.rooms;
    const room = await make(1);
    expect(slots()[1]!.rooms).toBe(rooms + 1);
    expect(room.usesWorker(1)).toBe(true);
    expect(room.usesWorker(0)).toBe(false);
    const routers = (room as unknown as { routers: Map<number, types.Router> }).routers;
    expect(routers.get(1)!.appData).toEqual({ callId: room.callId });
    room.close();
    room.close();
    expect(room.closed).toBe(true);
    expect(closedRooms.filter((r) => r === room)).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 20));
    expect(slots()[1]!.rooms).toBe(rooms);
    expect(room.workers).toEqual([]);
    await expect(room.join('a:1', '0xA', 'sig')).rejects.toMatchObject({ code: 'CALL_NOT_FOUND', message: 'This media session has ended; rejoin' });
  });

  it('tells the others who joined and left, and closes when the last one leaves', async () => {
    const room = await make(0);
    const a = await room.join('a:1', '0xA', 'sig');
    expect(a.worker).toBe(0);
    expect(a.producers).toEqual([]);
    expect(a.rtpCapabilities.codecs!.map((c) => c.mimeType)).toContain('audio/opus');
    expect(named('call.peerJoined')).toEqual([{ to: [], ev: 'call.peerJoined', data: { callId: room.callId, peerId: 'a:1', address: '0xA' } }]);
    await room.join('c:1', '0xC', 'sig');
    await room.join('b:1', '0xB', 'sig');
    expect(named('call.peerJoined').at(-1)!.to).toEqual(['0xA', '0xC']);
    expect(room.size).toBe(3);
    expect(room.recipients().map((r) => r.address)).toEqual(['0xA', '0xC', '0xB']);
    expect(room.recipients('b:1').map((r) => r.address)).toEqual(['0xA', '0xC']);
    expect(room.leave('nobody')).toBe(3);
    expect(room.leave('a:1')).toBe(2);
    expect(named('call.peerLeft')).toEqual([{ to: ['0xC', '0xB'], ev: 'call.peerLeft', data: { callId: room.callId, peerId: 'a:1', address: '0xA' } }]);
    expect(room.leave('c:1')).toBe(1);
    expect(room.closed).toBe(false);
    expect(room.leave('b:1', { keepRoom: true })).toBe(0);
    expect(room.closed).toBe(false);
    await room.join('b:1', '0xB', 'sig');
    expect(room.leave('b:1')).toBe(0);
    expect(room.closed).toBe(true);
  });

  it('replaces the session of a device that joins again, closing its transports', async () => {
    const room = await make(0);
    const a = await peer(room, 'a:1', '0xA');
    await room.join('b:1', '0xB', 'sig');
    await room.join('a:1', '0xA', 'sig');
    expect(named('call.peerLeft')).toEqual([{ to: ['0xB'], ev: 'call.peerLeft', data: { callId: room.callId, peerId: 'a:1', address: '0xA' } }]);
    room.leave('b:1');
    expect(room.size).toBe(1);
    expect(room.closed).toBe(false);
    await expect(room.connectTransport('a:1', a.send, {} as types.DtlsParameters)).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('creates transports of each direction for a joined peer only', async () => {
    const room = await make(0);
    await room.join('a:1', '0xA', 'sig');
    const t = await room.createTransport('a:1', 'send');
    expect(t.id).toBeTruthy();
    const udp = t.iceCandidates.find((c) => c.protocol === 'udp');
    const tcp = t.iceCandidates.find((c) => c.protocol === 'tcp');
    expect(udp).toBeDefined();
    expect(tcp).toBeDefined();
    expect(udp!.priority).toBeGreaterThan(tcp!.priority);
    expect(t.dtlsParameters.fingerprints.length).toBeGreaterThan(0);
    const ice = await room.restartIce('a:1', t.id);
    expect(ice.usernameFragment).not.toBe(t.iceParameters.usernameFragment);
    await expect(room.createTransport('b:1', 'send')).rejects.toMatchObject({ code: 'PEER_NOT_FOUND', message: 'Join the call first' });
    await expect(room.restartIce('a:1', 'no-such')).rejects.toMatchObject({ code: 'NOT_FOUND', message: 'No such transport for this participant' });
    // The parameters go to the transport: it takes them once.
    const dtls: types.DtlsParameters = { role: 'client', fingerprints: [{ algorithm: 'sha-256', value: 'AA:BB' }] };
    await room.connectTransport('a:1', t.id, dtls);
    await expect(room.connectTransport('a:1', t.id, dtls)).rejects.toThrow();
    // A transport that closes is forgotten.
    const transports = (room as unknown as { peers: Map<string, { transports: Map<string, types.WebRtcTransport> }> }).peers.get('a:1')!.transports;
    expect(transports.get(t.id)!.appData).toEqual({ direction: 'send', peerId: 'a:1' });
    transports.get(t.id)!.close();
    expect(transports.has(t.id)).toBe(false);
    await expect(room.restartIce('a:1', t.id)).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('produces on send transports only, with a track that fits its source', async () => {
    const room = await make(0);
    const a = await peer(room, 'a:1', '0xA');
    await room.join('b:1', '0xB', 'sig');
    const producers = slots()[0]!.producers;
    await expect(room.produce('a:1', a.recv, 'audio', audio(), 'mic', false)).rejects.toMatchObject({ code: 'BAD_REQUEST', message: 'Produce on a send transport' });
    await expect(room.produce('a:1', a.send, 'audio', audio(), 'camera', false)).rejects.toMatchObject({ code: 'BAD_REQUEST', message: 'A audio track cannot be the camera' });
    await expect(room.produce('a:1', a.send, 'video', video(), 'mic', false)).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    await expect(room.produce('a:1', a.send, 'video', { ...video(), codecs: [] }, 'camera', false)).rejects.toMatchObject({ code: 'BAD_REQUEST', message: expect.stringMatching(/^Cannot produce: ./) });
    const mic = await room.produce('a:1', a.send, 'audio', audio(), 'mic', false);
    const cam = await room.produce('a:1', a.send, 'video', video(), 'camera', true);
    await room.produce('a:1', a.send, 'video', video(), 'screen', false);
    expect(slots()[0]!.producers).toBe(producers + 3);
    expect(room.counts()).toEqual({ peers: 2, producers: 3, consumers: 0 });
    expect(named('call.producer')[0]).toEqual({
      to: ['0xB'],
      ev: 'call.producer',
      data: { callId: room.callId, producerId: mic, peerId: 'a:1', address: '0xA', kind: 'audio', source: 'mic', paused: false },
    });
    expect(named('call.producer')[1]!.data).toMatchObject({ producerId: cam, kind: 'video', source: 'camera', paused: true });
    const own = (room as unknown as { peers: Map<string, { producers: Map<string, { producer: types.Producer }> }> }).peers.get('a:1')!.producers;
    expect(own.get(mic)!.producer.appData).toEqual({ source: 'mic', peerId: 'a:1' });
    // Someone joining later learns of them; the producer does not see its own.
    const c = await room.join('c:1', '0xC', 'sig');
    expect(c.producers.map((p) => p.producerId)).toEqual([mic, cam, expect.any(String)]);
    expect((await room.join('b:2', '0xB', 'sig')).producers).toHaveLength(3);
    room.closeProducer('a:1', cam);
    expect(slots()[0]!.producers).toBe(producers + 2);
    expect(named('call.producerClosed')).toEqual([{ to: ['0xC', '0xB'], ev: 'call.producerClosed', data: { callId: room.callId, producerId: cam, peerId: 'a:1' } }]);
    expect(room.counts().producers).toBe(2);
    // Closing the room closes its producers without telling anyone.
    const before = events.length;
    room.close();
    await new Promise((r) => setTimeout(r, 20));
    expect(slots()[0]!.producers).toBe(producers);
    expect(events.slice(before).filter((e) => e.ev === 'call.producerClosed')).toEqual([]);
  });

  it('lets only the owner pause, resume or close a producer', async () => {
    const room = await make(0);
    const a = await peer(room, 'a:1', '0xA');
    await room.join('b:1', '0xB', 'sig');
    const mic = await room.produce('a:1', a.send, 'audio', audio(), 'mic', false);
    await room.pauseProducer('a:1', mic, true);
    expect(named('call.producerState')).toEqual([{ to: ['0xB'], ev: 'call.producerState', data: { callId: room.callId, producerId: mic, peerId: 'a:1', paused: true } }]);
    expect((await room.join('c:1', '0xC', 'sig')).producers[0]!.paused).toBe(true);
    await room.pauseProducer('a:1', mic, false);
    expect(named('call.producerState')[1]!.data.paused).toBe(false);
    expect((await room.join('d:1', '0xD', 'sig')).producers[0]!.paused).toBe(false);
    expect(() => room.closeProducer('b:1', mic)).toThrow(expect.objectContaining({ code: 'FORBIDDEN', message: 'That producer belongs to another participant' }));
    expect(() => room.closeProducer('b:1', 'nope')).toThrow(expect.objectContaining({ code: 'NOT_FOUND', message: 'No such producer' }));
    expect(() => room.pauseProducer('x:1', mic, true)).toThrow(expect.objectContaining({ code: 'PEER_NOT_FOUND' }));
  });

  it('consumes others’ producers on recv transports, paused, counting consumers on the worker', async () => {
    const room = await make(0);
    const a = await peer(room, 'a:1', '0xA');
    const b = await peer(room, 'b:1', '0xB');
    const caps = b.joined.rtpCapabilities;
    const mic = await room.produce('a:1', a.send, 'audio', audio(), 'mic', false);
    const consumers = slots()[0]!.consumers;
    await expect(room.consume('b:1', b.send, mic, caps)).rejects.toMatchObject({ code: 'BAD_REQUEST', message: 'Consume on a recv transport' });
    await expect(room.consume('b:1', b.recv, 'nope', caps)).rejects.toMatchObject({ code: 'NOT_FOUND', message: 'No such producer in this call' });
    await expect(room.consume('a:1', a.recv, mic, caps)).rejects.toMatchObject({ code: 'BAD_REQUEST', message: 'A participant does not consume its own producer' });
    await expect(room.consume('b:1', b.recv, mic, { codecs: [] })).rejects.toMatchObject({ code: 'CANNOT_CONSUME', message: 'Your device cannot receive this codec' });
    const c = await room.consume('b:1', b.recv, mic, caps);
    expect(c).toMatchObject({ producerId: mic, kind: 'audio', type: 'simple', producerPaused: false });
    expect(c.rtpParameters.codecs[0]!.mimeType).toBe('audio/opus');
    expect(slots()[0]!.consumers).toBe(consumers + 1);
    expect(room.counts()).toEqual({ peers: 2, producers: 1, consumers: 1 });
    const consumer = (room as unknown as { peers: Map<string, { consumers: Map<string, types.Consumer> }> }).peers.get('b:1')!.consumers.get(c.id)!;
    expect(consumer.paused).toBe(true);
    expect(consumer.appData).toEqual({ peerId: 'b:1' });
    await room.resumeConsumer('b:1', c.id);
    expect(consumer.paused).toBe(false);
    await room.setPreferredLayers('b:1', c.id, 0);
    await room.setPreferredLayers('b:1', c.id, 0, 0);
    await expect(room.resumeConsumer('b:1', 'nope')).rejects.toMatchObject({ code: 'NOT_FOUND', message: 'No such consumer' });
    await expect(room.setPreferredLayers('b:1', 'nope', 0)).rejects.toMatchObject({ code: 'NOT_FOUND', message: 'No such consumer' });
    await expect(room.resumeConsumer('a:1', c.id)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    // Closing the producer closes its consumers.
    room.closeProducer('a:1', mic);
    await new Promise((r) => setTimeout(r, 50));
    expect(slots()[0]!.consumers).toBe(consumers);
    expect(room.counts().consumers).toBe(0);
  });

  it('passes the temporal layer only when given', async () => {
    const room = await make(0);
    const a = await peer(room, 'a:1', '0xA');
    const b = await peer(room, 'b:1', '0xB');
    const cam = await room.produce('a:1', a.send, 'video', video(), 'camera', false);
    const c = await room.consume('b:1', b.recv, cam, b.joined.rtpCapabilities);
    const consumer = (room as unknown as { peers: Map<string, { consumers: Map<string, types.Consumer> }> }).peers.get('b:1')!.consumers.get(c.id)!;
    const spy = vi.spyOn(consumer, 'setPreferredLayers');
    await room.setPreferredLayers('b:1', c.id, 1);
    await room.setPreferredLayers('b:1', c.id, 2, 1);
    expect(spy.mock.calls).toStrictEqual([[{ spatialLayer: 1 }], [{ spatialLayer: 2, temporalLayer: 1 }]]);
  });

  it('moves new peers to another worker once the primary is full, piping producers once', async () => {
    const room = await make(0, 1);
    const a = await peer(room, 'a:1', '0xA');
    slots()[0]!.consumers = 1;
    const b = await peer(room, 'b:1', '0xB');
    expect(b.joined.worker).toBe(1);
    expect(room.workers).toEqual([0, 1]);
    const mic = await room.produce('a:1', a.send, 'audio', audio(), 'mic', false);
    const pipes = vi.spyOn(room as unknown as { pipe: (...a: unknown[]) => Promise<void> }, 'pipe');
    const c1 = await room.consume('b:1', b.recv, mic, b.joined.rtpCapabilities);
    expect(c1.producerId).toBe(mic);
    expect(pipes).toHaveBeenCalledWith(mic, 0, 1);
    const piped = (room as unknown as { piped: Map<string, Promise<void>> }).piped;
    expect([...piped.keys()]).toEqual([`${mic}>1`]);
    // A second peer on worker 1 reuses the pipe.
    slots()[1]!.consumers = 0;
    const c = await peer(room, 'c:1', '0xC');
    expect(c.joined.worker).toBe(1);
    await room.consume('c:1', c.recv, mic, c.joined.rtpCapabilities);
    expect(piped.size).toBe(1);
    // The peer on worker 1 produces; a peer on the primary consumes it through a pipe the other way.
    const cam = await room.produce('b:1', b.send, 'video', video(), 'camera', false);
    await room.consume('a:1', a.recv, cam, a.joined.rtpCapabilities);
    expect([...piped.keys()].sort()).toEqual([`${cam}>0`, `${mic}>1`].sort());
  });

  it('forgets a pipe that failed so it can be tried again', async () => {
    const room = await make(0, 1);
    await peer(room, 'a:1', '0xA');
    slots()[0]!.consumers = 1;
    await peer(room, 'b:1', '0xB');
    const pipe = (room as unknown as { pipe: (p: string, f: number, t: number) => Promise<void> }).pipe.bind(room);
    await expect(pipe('no-such-producer', 0, 1)).rejects.toThrow();
    await new Promise((r) => setTimeout(r, 10));
    expect((room as unknown as { piped: Map<string, unknown> }).piped.size).toBe(0);
  });

  it('picks workers: the primary with room, else the least loaded with room, else the primary, else any live one', async () => {
    const room = await make(0, 2);
    const pick = () => (room as unknown as { pickWorker(): WorkerSlot }).pickWorker().index;
    expect(pick()).toBe(0);
    slots()[0]!.consumers = 1;
    expect(pick()).toBe(0);
    slots()[0]!.consumers = 2;
    expect(pick()).toBe(1);
    slots()[1]!.consumers = 2;
    expect(pick()).toBe(0);
    // Both full, the other less so: still the primary.
    slots()[0]!.consumers = 3;
    expect(pick()).toBe(0);
    slots()[0]!.alive = false;
    expect(pick()).toBe(1);
    slots()[1]!.alive = false;
    expect(pick).toThrow(expect.objectContaining({ code: 'INTERNAL', message: 'no live worker' }));
    slots()[1]!.alive = true;
    slots()[1]!.consumers = 0;
    expect(pick()).toBe(1);
  });

  it('refuses a router on a dead worker', async () => {
    const room = await make(0, 1);
    slots()[0]!.consumers = 1;
    slots()[1]!.alive = false;
    // The primary is full and the other worker is dead: the primary takes the peer.
    expect((await room.join('a:1', '0xA', 'sig')).worker).toBe(0);
    const router = (room as unknown as { router(i: number): Promise<unknown> }).router.bind(room);
    await expect(router(1)).rejects.toMatchObject({ code: 'INTERNAL', message: 'worker 1 is not alive' });
    await expect(router(5)).rejects.toMatchObject({ code: 'INTERNAL' });
  });

  it('reports the dominant speaker to everyone, and to those who join later', async () => {
    const room = await make(0);
    const a = await peer(room, 'a:1', '0xA');
    await room.join('b:1', '0xB', 'sig');
    const mic = await room.produce('a:1', a.send, 'audio', audio(), 'mic', false);
    const speaker = (room as unknown as { speakers: Map<number, types.ActiveSpeakerObserver> }).speakers.get(0)!;
    speaker.emit('dominantspeaker', { producer: { id: 'unknown' } as types.Producer });
    expect(named('call.activeSpeaker')).toEqual([]);
    speaker.emit('dominantspeaker', { producer: { id: mic } as types.Producer });
    expect(named('call.activeSpeaker')).toEqual([{ to: ['0xA', '0xB'], ev: 'call.activeSpeaker', data: { callId: room.callId, peerId: 'a:1', address: '0xA' } }]);
    await room.join('c:1', '0xC', 'sig');
    expect(named('call.activeSpeaker').at(-1)).toEqual({ to: ['0xC'], ev: 'call.activeSpeaker', data: { callId: room.callId, peerId: 'a:1', address: '0xA' } });
    // Someone else leaving changes nothing.
    room.leave('c:1');
    await room.join('e:1', '0xE', 'sig');
    expect(named('call.activeSpeaker').at(-1)!.to).toEqual(['0xE']);
    // Once the speaker leaves, nobody is reported to newcomers.
    room.leave('a:1');
    const before = named('call.activeSpeaker').length;
    await room.join('d:1', '0xD', 'sig');
    expect(named('call.activeSpeaker')).toHaveLength(before);
  });

  it('adds audio producers, not video ones, to the speaker observer', async () => {
    const room = await make(0);
    const a = await peer(room, 'a:1', '0xA');
    const speaker = (room as unknown as { speakers: Map<number, types.ActiveSpeakerObserver> }).speakers.get(0)!;
    const add = vi.spyOn(speaker, 'addProducer');
    const mic = await room.produce('a:1', a.send, 'audio', audio(), 'mic', false);
    await room.produce('a:1', a.send, 'video', video(), 'camera', false);
    expect(add.mock.calls).toEqual([[{ producerId: mic }]]);
    // A speaker observer that fails does not fail the produce (one mic per peer: close the first).
    room.closeProducer('a:1', mic);
    add.mockRejectedValueOnce(new Error('observer closed'));
    await expect(room.produce('a:1', a.send, 'audio', audio(), 'mic', false)).resolves.toBeTruthy();
  });

  it('abandon tells everyone to rejoin and closes, once', async () => {
    const room = await make(0);
    await room.join('a:1', '0xA', 'sig');
    await room.join('b:1', '0xB', 'sig');
    room.abandon('worker died');
    room.abandon('again');
    expect(named('call.rejoin')).toEqual([{ to: ['0xA', '0xB'], ev: 'call.rejoin', data: { callId: room.callId, reason: 'worker died' } }]);
    expect(room.closed).toBe(true);
    expect(room.size).toBe(0);
    expect(closedRooms.filter((r) => r === room)).toHaveLength(1);
  });
});
