import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePortBase } from '../testkit/ports.ts';
import { SfuService } from './service.ts';
import { WorkerPool } from './worker-pool.ts';

/** The real mediasoup worker, in process. */
describe('SfuService rooms', () => {
  const log = pino({ level: 'silent' });
  let pool: WorkerPool;
  let service: SfuService;
  const events: { origin: string; to: string[]; type: string }[] = [];

  beforeAll(async () => {
    pool = await WorkerPool.create({ workers: 1, listenIp: '127.0.0.1', announcedAddress: null, portBase: await freePortBase(1), logLevel: 'error' }, log);
    service = new SfuService(pool, 500, log);
    service.onEvent((origin, { to, event }) => events.push({ origin, to, type: event.type }));
  });
  afterAll(() => {
    service.close();
    pool.close();
  });

  it('keeps the media session when its only participant joins again (a rejoin), and ends it when the last one leaves', async () => {
    const callId = 'call-rejoin-alone';
    await service.handle('join', { callId, peerId: 'a:dev1', address: '0xA', worker: 0, origin: 'sig1' });
    const room = service.rooms.get(callId)!;
    await service.handle('createTransport', { callId, peerId: 'a:dev1', direction: 'send' });
    // Rejoin of the same device while nobody else is in the call.
    await service.handle('join', { callId, peerId: 'a:dev1', address: '0xA', worker: 0, origin: 'sig1' });
    expect(service.rooms.get(callId)).toBe(room);
    expect(room.closed).toBe(false);
    const t = await service.handle('createTransport', { callId, peerId: 'a:dev1', direction: 'recv' });
    expect(t.id).toBeTruthy();
    expect(room.counts().peers).toBe(1);

    await service.handle('join', { callId, peerId: 'b:dev1', address: '0xB', worker: 0, origin: 'sig2' });
    // The media event goes to the signaling node that serves A, in the SFU's own shape.
    expect(events).toContainEqual({ origin: 'sig1', to: ['0xA'], type: 'peerJoined' });
    expect(events.some((e) => e.origin === 'sig2' && e.type === 'peerJoined')).toBe(false);
    expect((await service.handle('leave', { callId, peerId: 'a:dev1' })).remaining).toBe(1);
    expect((await service.handle('leave', { callId, peerId: 'b:dev1' })).remaining).toBe(0);
    expect(room.closed).toBe(true);
    expect(service.rooms.has(callId)).toBe(false);
    await expect(service.handle('createTransport', { callId, peerId: 'b:dev1', direction: 'send' })).rejects.toMatchObject({ code: 'CALL_NOT_FOUND' });
  });
});
