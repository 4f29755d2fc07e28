import { Wallet } from 'ethers';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Config } from '../../config/config.ts';
import { CallStore } from '../../db/calls.ts';
import { openDatabase, type Database } from '../../db/client.ts';
import { decodeDelivery, type Bus } from '../../infra/bus/bus.ts';
import { Events } from '../events.ts';
import { createMetrics } from '../metrics.ts';
import { MemoryRateLimiter } from '../ratelimit/memory.ts';
import type { Logger } from '../../infra/logger.ts';
import { BlockRtcError } from '../../protocol/errors.ts';
import type { SfuErrorCode } from '../../protocol/sfu.ts';
import type { SfuClient } from '../../sfu/channel.ts';
import { SfuError } from '../../sfu/errors.ts';
import { MemorySfuRegistry } from '../../sfu/registry/memory.ts';
import { createTestDatabase, query } from '../../testkit/pg.ts';
import type { Connection } from '../ws/connection.ts';
import { CallService } from './service.ts';
import { openRelations } from '../../testkit/fakes.ts';
import type { Relations } from '../requests/relations.ts';

/**
 * The call service over its real PostgreSQL store, the in-process SFU registry, a recording
 * bus and a scripted SFU client.
 */
describe('CallService', () => {
  let database: Database;
  let url: string;
  let drop: () => Promise<void> = async () => undefined;

  beforeAll(async () => {
    const db = await createTestDatabase('calls_unit');
    drop = db.drop;
    url = db.url;
    database = await openDatabase({ url: db.url, dataDir: '', poolSize: 2 });
    await database.migrate();
  });
  afterAll(async () => {
    await database.close();
    await drop();
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
  });

  const addr = () => Wallet.createRandom().address;
  let connSeq = 0;
  const connOf = (address: string) => ({ id: `sig-1.${++connSeq}`, address }) as Connection;

  function setup(opts: { turn?: Config['turn']; nodes?: string[]; maxParticipants?: number; relations?: Relations } = {}) {
    const calls = new CallStore(database.db);
    const registry = new MemorySfuRegistry(10_000, 100);
    for (const node of opts.nodes ?? ['sfu-a']) void registry.heartbeat(node, [{ index: 0, alive: true, consumers: 0, producers: 0, rooms: 0, cpu: 0 }], false, Date.now());
    const events: { to: string; ev: string; data: Record<string, unknown> }[] = [];
    const bus = {
      publish: vi.fn(async (to: string, payload: string) => {
        const f = JSON.parse(decodeDelivery(payload).frame) as { ev: string; data: Record<string, unknown> };
        events.push({ to, ev: f.ev, data: f.data });
      }),
    };
    /** Per node: errors to throw for the next requests. */
    const failures = new Map<string, unknown[]>();
    const sfuCalls: { node: string; method: string; params: Record<string, unknown> }[] = [];
    const sfu = {
      request: vi.fn(async (node: string, method: string, params: Record<string, unknown>) => {
        sfuCalls.push({ node, method, params });
        const f = failures.get(node)?.shift();
        if (f) throw f;
        if (method === 'join') return { rtpCapabilities: { codecs: ['opus'] }, producers: [{ producerId: 'p1' }], worker: 0 };
        if (method === 'leave') return { remaining: 0 };
        return { echoed: method };
      }),
      onEvent: vi.fn(),
    };
    const log = { warn: vi.fn() };
    const config = {
      nodeId: 'sig-1',
      calls: { ringTimeoutMs: 30_000, maxParticipants: opts.maxParticipants ?? 4, maxRingingPerCaller: 100, maxRingingPerCallee: 100 },
      limits: { calls: { limit: 1000, windowMs: 60_000 } },
      turn: opts.turn ?? { secret: null, urls: [], ttlSec: 600 },
      presence: { heartbeatMs: 50 },
    } as unknown as Config;
    const service = new CallService({
      config,
      calls,
      registry,
      sfu: sfu as unknown as SfuClient,
      events: new Events(bus as unknown as Bus, log as unknown as Logger),
      limiter: new MemoryRateLimiter(),
      metrics: createMetrics(),
      relations: opts.relations ?? openRelations(),
      log: log as unknown as Logger,
    });
    const of = (ev: string) => events.filter((e) => e.ev === ev);
    return { service, calls, registry, events, of, bus, sfu, sfuCalls, failures, log, config };
  }
  type Setup = ReturnType<typeof setup>;

  const codeOf = (p: Promise<unknown>) =>
    p.then(
      () => 'ok',
      (e: unknown) => (e instanceof BlockRtcError ? e.code : String(e)),
    );
  const start = (s: Setup, from: Connection, to: string[], kind: 'audio' | 'video' = 'audio') => s.service.startCall(from, { type: 'call.start', id: 'r', to, kind });
  const req = (callId: string) => ({ type: 'x', id: 'r', callId }) as never;
  const join = (s: Setup, c: Connection, callId: string, device = 'dev1') => s.service.join(c, { type: 'call.join', id: 'r', callId, device });
  const state = async (s: Setup, callId: string) => (await s.calls.get(callId))!;

  describe('startCall', () => {
    it('rings each other invitee once and places the call', async () => {
      const s = setup();
      const [me, b, c] = [addr(), addr(), addr()];
      const t0 = Date.now();
      const res = await start(s, connOf(me), [b.toLowerCase(), b, c, me], 'video');
      const t1 = Date.now();
      expect(res.participants.map((p) => [p.address, p.role, p.state, p.joinedAt, p.leftAt])).toEqual([
        [me, 'initiator', 'accepted', null, null],
        [b, 'invitee', 'ringing', null, null],
        [c, 'invitee', 'ringing', null, null],
      ]);
      expect(s.of('call.incoming')).toEqual(
        [b, c].map((to) => ({
          to,
          ev: 'call.incoming',
          data: { callId: res.callId, from: me, kind: 'video', participants: [me, b, c], expiresAt: expect.any(String) },
        })),
      );
      const expiresAt = Date.parse(s.of('call.incoming')[0]!.data.expiresAt as string);
      expect(expiresAt).toBeGreaterThanOrEqual(t0 + 30_000);
      expect(expiresAt).toBeLessThanOrEqual(t1 + 30_000);
      expect((await state(s, res.callId)).call).toMatchObject({ sfuNode: 'sfu-a', sfuWorker: 0, kind: 'video', initiator: me });
      expect(await s.registry.lookup(res.callId)).toEqual({ node: 'sfu-a', worker: 0 });
    });

    it('needs someone else, and at most the configured number of participants', async () => {
      const s = setup({ maxParticipants: 3 });
      const me = addr();
      expect(await codeOf(start(s, connOf(me), [me]))).toBe('BAD_REQUEST');
      await expect(start(s, connOf(me), [me])).rejects.toThrow('Invite at least one other address');
      await expect(start(s, connOf(me), [addr(), addr(), addr()])).rejects.toMatchObject({ code: 'TOO_MANY_PARTICIPANTS', message: 'At most 3 participants' });
      expect(await codeOf(start(s, connOf(me), [addr(), addr()]))).toBe('ok');
    });

    it('marks invitees who are in another call busy, and ends the call when nobody can ring', async () => {
      const s = setup();
      const [x, busy, free] = [addr(), addr(), addr()];
      const first = await start(s, connOf(x), [busy]);
      await join(s, connOf(busy), first.callId);
      const me = addr();
      const res = await start(s, connOf(me), [busy, free]);
      expect(res.participants.find((p) => p.address === busy)!.state).toBe('busy');
      expect(s.of('call.incoming').filter((e) => e.data.callId === res.callId).map((e) => e.to)).toEqual([free]);
      const alone = await start(s, connOf(addr()), [busy]);
      expect((await state(s, alone.callId)).call).toMatchObject({ endReason: 'busy' });
      expect(s.of('call.ended').filter((e) => e.data.callId === alone.callId)).toHaveLength(2);
      expect(s.of('call.incoming').filter((e) => e.data.callId === alone.callId)).toEqual([]);
    });

    it('fails the call when no media node is available', async () => {
      const s = setup({ nodes: [] });
      const me = addr();
      expect(await codeOf(start(s, connOf(me), [addr()]))).toBe('MEDIA_UNAVAILABLE');
      const [row] = await query<{ end_reason: string }>(url, 'select end_reason from calls where initiator = $1', [me]);
      expect(row!.end_reason).toBe('failed');
      expect(s.of('call.incoming')).toEqual([]);
    });
  });

  describe('answering', () => {
    it('accepts once, for the invitee only, telling every participant', async () => {
      const s = setup();
      const [me, b, stranger] = [addr(), addr(), addr()];
      const { callId } = await start(s, connOf(me), [b]);
      expect(await codeOf(s.service.accept(connOf(stranger), req(callId)))).toBe('CALL_NOT_ALLOWED');
      expect(await codeOf(s.service.accept(connOf(b), req('00000000-0000-4000-8000-000000000000')))).toBe('CALL_NOT_FOUND');
      expect(await s.service.accept(connOf(b), req(callId))).toEqual({});
      expect((await state(s, callId)).call.answeredAt).toBeInstanceOf(Date);
      expect((await state(s, callId)).participants.find((p) => p.address === b)!.state).toBe('accepted');
      expect(s.of('call.participant')).toEqual([me, b].map((to) => ({ to, ev: 'call.participant', data: { callId, address: b, state: 'accepted' } })));
      await expect(s.service.accept(connOf(b), req(callId))).rejects.toMatchObject({ code: 'CALL_STATE', message: 'This call is not ringing for you' });
      await expect(s.service.reject(connOf(b), req(callId))).rejects.toMatchObject({ code: 'CALL_STATE', message: 'This call is not ringing for you' });
    });

    it('ends the call as rejected once every invitee has rejected', async () => {
      const s = setup();
      const [me, b, c] = [addr(), addr(), addr()];
      const { callId } = await start(s, connOf(me), [b, c]);
      await s.service.reject(connOf(b), req(callId));
      expect(s.of('call.participant').map((e) => e.data)).toEqual([0, 1, 2].map(() => ({ callId, address: b, state: 'rejected' })));
      expect((await state(s, callId)).call.endedAt).toBeNull();
      await s.service.reject(connOf(c), req(callId));
      expect((await state(s, callId)).call.endReason).toBe('rejected');
      expect(s.of('call.ended').map((e) => e.data)).toEqual([0, 1, 2].map(() => ({ callId, reason: 'rejected' })));
      expect(await codeOf(s.service.accept(connOf(c), req(callId)))).toBe('CALL_ENDED');
    });

    it('lets only the caller cancel, and only before an answer', async () => {
      const s = setup();
      const [me, b] = [addr(), addr()];
      const { callId } = await start(s, connOf(me), [b]);
      await expect(s.service.cancel(connOf(b), req(callId))).rejects.toMatchObject({ code: 'CALL_NOT_ALLOWED', message: 'Only the caller can cancel' });
      expect(await s.service.cancel(connOf(me), req(callId))).toEqual({});
      expect((await state(s, callId)).call.endReason).toBe('cancelled');
      expect(await s.registry.lookup(callId)).toBeNull();
      expect(s.sfuCalls.filter((c) => c.method === 'closeCall')).toEqual([{ node: 'sfu-a', method: 'closeCall', params: { callId } }]);
      expect(s.of('call.ended').map((e) => e.to)).toEqual([me, b]);
      const second = await start(s, connOf(me), [b]);
      await s.service.accept(connOf(b), req(second.callId));
      await expect(s.service.cancel(connOf(me), req(second.callId))).rejects.toMatchObject({ code: 'CALL_STATE', message: 'The call was answered; leave it instead' });
    });
  });

  describe('join and leave', () => {
    it('joins media on the call’s node with a peer id per device, marking the call answered by an invitee', async () => {
      const s = setup({ turn: { secret: 'turn-secret', urls: ['turn:turn.example:3478'], ttlSec: 600 } as Config['turn'] });
      const [me, b] = [addr(), addr()];
      const { callId } = await start(s, connOf(me), [b]);
      const mine = connOf(me);
      const res = await join(s, mine, callId, 'tab1');
      expect(res).toMatchObject({ callId, peerId: `${me}:tab1`, rtpCapabilities: { codecs: ['opus'] }, producers: [{ producerId: 'p1' }] });
      expect(s.sfuCalls.at(-1)).toEqual({ node: 'sfu-a', method: 'join', params: { callId, peerId: `${me}:tab1`, address: me, worker: 0, origin: 'sig-1' } });
      expect(res.iceServers).toHaveLength(1);
      expect(res.iceServers[0]!.urls).toEqual(['turn:turn.example:3478']);
      expect(res.iceServers[0]!.username).toMatch(new RegExp(`^\\d+:${me}$`));
      expect(res.participants.find((p) => p.address === me)).toMatchObject({ state: 'joined', joinedAt: expect.any(String) });
      // The caller joining is no answer.
      expect((await state(s, callId)).call.answeredAt).toBeNull();
      expect(s.of('call.participant').map((e) => [e.to, e.data.state])).toEqual([
        [me, 'joined'],
        [b, 'joined'],
      ]);
      await join(s, connOf(b), callId);
      expect((await state(s, callId)).call.answeredAt).toBeInstanceOf(Date);
    });

    it('gives TURN servers only with a secret and URLs', async () => {
      for (const turn of [
        { secret: null, urls: ['turn:t:3478'], ttlSec: 600 },
        { secret: 'x', urls: [], ttlSec: 600 },
      ]) {
        const s = setup({ turn: turn as Config['turn'] });
        const me = addr();
        const { callId } = await start(s, connOf(me), [addr()]);
        expect((await join(s, connOf(me), callId)).iceServers).toEqual([]);
      }
    });

    it('refuses participants who rejected, were busy or missed it', async () => {
      const s = setup();
      const [me, b, x] = [addr(), addr(), addr()];
      const { callId } = await start(s, connOf(me), [b]);
      await s.service.reject(connOf(b), req(callId));
      // The call ended (nobody left to answer) — a call still going needs a second invitee.
      const two = await start(s, connOf(me), [b, x]);
      await s.service.reject(connOf(b), req(two.callId));
      await expect(join(s, connOf(b), two.callId)).rejects.toMatchObject({ code: 'CALL_STATE', message: 'You have rejected this call' });
      const [y, busy] = [addr(), addr()];
      const other = await start(s, connOf(y), [busy]);
      await join(s, connOf(busy), other.callId);
      const three = await start(s, connOf(me), [busy, x]);
      await expect(join(s, connOf(busy), three.callId)).rejects.toMatchObject({ code: 'CALL_STATE', message: 'You were busy this call' });
    });

    it('takes the media session back when the store refuses the join', async () => {
      const s = setup();
      const me = addr();
      const { callId } = await start(s, connOf(me), [addr()]);
      vi.spyOn(s.calls, 'joined').mockResolvedValueOnce(false);
      expect(await codeOf(join(s, connOf(me), callId, 'tab9'))).toBe('CALL_STATE');
      expect(s.sfuCalls.at(-1)).toEqual({ node: 'sfu-a', method: 'leave', params: { callId, peerId: `${me}:tab9` } });
      s.failures.set('sfu-a', [undefined, new Error('gone')]);
      vi.spyOn(s.calls, 'joined').mockResolvedValueOnce(false);
      expect(await codeOf(join(s, connOf(me), callId, 'tab9'))).toBe('CALL_STATE');
    });

    it('places the call on first join if it lost its placement, and moves it off a node that is down or draining', async () => {
      const s = setup({ nodes: ['sfu-a', 'sfu-b'] });
      const me = addr();
      const { callId } = await start(s, connOf(me), [addr()]);
      const first = (await s.registry.lookup(callId))!.node;
      const other = first === 'sfu-a' ? 'sfu-b' : 'sfu-a';
      s.failures.set(first, [new SfuError('UNAVAILABLE', 'down')]);
      await join(s, connOf(me), callId);
      expect(s.sfuCalls.filter((c) => c.method === 'join').map((c) => c.node)).toEqual([first, other]);
      expect((await state(s, callId)).call.sfuNode).toBe(other);
      expect(s.log.warn).toHaveBeenCalledWith({ callId, node: first, code: 'UNAVAILABLE' }, 'media node unavailable; placing the call again');
      s.failures.set(other, [new SfuError('DRAINING', 'draining')]);
      await join(s, connOf(me), callId);
      expect((await s.registry.lookup(callId))!.node).toBe(first);
      // Lost placement: placed again.
      await s.registry.release(callId);
      await join(s, connOf(me), callId);
      expect(await s.registry.lookup(callId)).not.toBeNull();
    });

    it('maps media failures on join', async () => {
      const s = setup();
      const me = addr();
      const { callId } = await start(s, connOf(me), [addr()]);
      s.failures.set('sfu-a', [new SfuError('BAD_REQUEST', 'no')]);
      expect(await codeOf(join(s, connOf(me), callId))).toBe('MEDIA_REJECTED');
      s.failures.set('sfu-a', [new SfuError('UNAVAILABLE', 'down')]);
      // No other node to move to: the only one is draining now.
      await s.registry.heartbeat('sfu-a', [{ index: 0, alive: true, consumers: 0, producers: 0, rooms: 0, cpu: 0 }], true, Date.now());
      expect(await codeOf(join(s, connOf(me), callId))).toBe('MEDIA_UNAVAILABLE');
      // The placement went with it: nothing to place it on either.
      expect(await codeOf(join(s, connOf(me), callId))).toBe('MEDIA_UNAVAILABLE');
      await s.registry.heartbeat('sfu-a', [{ index: 0, alive: true, consumers: 0, producers: 0, rooms: 0, cpu: 0 }], false, Date.now());
      s.failures.set('sfu-a', [new Error('socket closed')]);
      expect(await codeOf(join(s, connOf(me), callId))).toBe('INTERNAL');
      const two = setup({ nodes: ['sfu-a', 'sfu-b'] });
      const c2 = await start(two, connOf(me), [addr()]);
      const node = (await two.registry.lookup(c2.callId))!.node;
      const other = node === 'sfu-a' ? 'sfu-b' : 'sfu-a';
      two.failures.set(node, [new SfuError('UNAVAILABLE', 'down')]);
      two.failures.set(other, [new SfuError('UNAVAILABLE', 'also down')]);
      expect(await codeOf(join(two, connOf(me), c2.callId))).toBe('MEDIA_REJOIN');
      const none = setup({ nodes: [] });
      const c3 = await start(s, connOf(me), [addr()]);
      expect(await codeOf(join(none, connOf(me), c3.callId))).toBe('MEDIA_UNAVAILABLE');
    });

    it('leaves: only a joined connection, ending an answered call when the last one leaves', async () => {
      const s = setup();
      const [me, b] = [addr(), addr()];
      const { callId } = await start(s, connOf(me), [b]);
      const [cm, cb] = [connOf(me), connOf(b)];
      expect(await codeOf(s.service.leave(cm, req(callId)))).toBe('NOT_IN_CALL');
      await join(s, cm, callId);
      await join(s, cb, callId);
      expect(await s.service.leave(cm, req(callId))).toEqual({});
      expect(s.sfuCalls.at(-1)).toEqual({ node: 'sfu-a', method: 'leave', params: { callId, peerId: `${me}:dev1` } });
      expect(s.of('call.participant').at(-1)!.data).toEqual({ callId, address: me, state: 'left' });
      expect((await state(s, callId)).call.endedAt).toBeNull();
      expect(await codeOf(s.service.leave(cm, req(callId)))).toBe('NOT_IN_CALL');
      s.failures.set('sfu-a', [new Error('sfu gone')]);
      await s.service.leave(cb, req(callId));
      expect((await state(s, callId)).call.endReason).toBe('completed');
    });

    it('ends an unanswered call as cancelled when the caller leaves it, but not when someone else does', async () => {
      const s = setup();
      const [me, b] = [addr(), addr()];
      const { callId } = await start(s, connOf(me), [b, addr()]);
      const cm = connOf(me);
      await join(s, cm, callId);
      vi.spyOn(s.calls, 'markAnswered').mockResolvedValue();
      const cb = connOf(b);
      await join(s, cb, callId);
      await s.service.leave(cb, req(callId));
      expect((await state(s, callId)).call.endedAt).toBeNull();
      await join(s, cb, callId);
      await s.service.leave(cm, req(callId));
      expect((await state(s, callId)).call.endedAt).toBeNull();
      const solo = await start(s, connOf(me), [addr()]);
      await join(s, cm, solo.callId);
      await s.service.leave(cm, req(solo.callId));
      expect((await state(s, solo.callId)).call.endReason).toBe('cancelled');
    });

    it('counts a dropped connection as leaving after the grace period, unless it rejoined elsewhere', async () => {
      const s = setup();
      const [me, b] = [addr(), addr()];
      const { callId } = await start(s, connOf(me), [b]);
      const [cm, cb] = [connOf(me), connOf(b)];
      await join(s, cm, callId);
      await join(s, cb, callId);
      vi.useFakeTimers({ toFake: ['setTimeout'] });
      s.service.connectionClosed(cm);
      s.service.connectionClosed(connOf(addr()));
      await vi.advanceTimersByTimeAsync(9_999);
      expect((await state(s, callId)).participants.find((p) => p.address === me)!.state).toBe('joined');
      expect(await codeOf(s.service.media(cm, callId, 'restartIce', { transportId: 't' } as never))).toBe('NOT_IN_CALL');
      await vi.advanceTimersByTimeAsync(1);
      await vi.waitFor(async () => expect((await state(s, callId)).participants.find((p) => p.address === me)!.state).toBe('left'));
      // b rejoins on a new connection before its old one's grace ends: it stays in.
      s.service.connectionClosed(cb);
      await join(s, connOf(b), callId, 'dev1');
      await vi.advanceTimersByTimeAsync(10_000);
      await new Promise((r) => setImmediate(r));
      expect((await state(s, callId)).participants.find((p) => p.address === b)!.state).toBe('joined');
    });

    it('logs a leave after disconnect that fails', async () => {
      const s = setup();
      const me = addr();
      const { callId } = await start(s, connOf(me), [addr()]);
      const cm = connOf(me);
      await join(s, cm, callId);
      vi.spyOn(s.calls, 'left').mockRejectedValueOnce(new Error('db down'));
      vi.useFakeTimers({ toFake: ['setTimeout'] });
      s.service.connectionClosed(cm);
      await vi.advanceTimersByTimeAsync(10_000);
      await vi.waitFor(() => expect(s.log.warn).toHaveBeenCalledWith({ err: expect.any(Error), callId }, 'leave after disconnect failed'));
    });
  });

  describe('media relay', () => {
    it('relays requests of a joined connection to its node with its peer id, and maps errors', async () => {
      const s = setup();
      const me = addr();
      const { callId } = await start(s, connOf(me), [addr()]);
      const cm = connOf(me);
      await join(s, cm, callId);
      expect(await s.service.media(cm, callId, 'createTransport', { direction: 'send' })).toEqual({ echoed: 'createTransport' });
      expect(s.sfuCalls.at(-1)).toEqual({ node: 'sfu-a', method: 'createTransport', params: { direction: 'send', callId, peerId: `${me}:dev1` } });
      expect(await codeOf(s.service.media(connOf(me), callId, 'createTransport', { direction: 'send' }))).toBe('NOT_IN_CALL');
      const cases: [unknown, string][] = [
        [new SfuError('CALL_NOT_FOUND', 'x'), 'MEDIA_REJOIN'],
        [new SfuError('PEER_NOT_FOUND', 'x'), 'MEDIA_REJOIN'],
        [new SfuError('UNAVAILABLE', 'x'), 'MEDIA_REJOIN'],
        [new SfuError('DRAINING', 'x'), 'MEDIA_REJOIN'],
        [new SfuError('NOT_FOUND', 'x'), 'NOT_FOUND'],
        [new SfuError('FORBIDDEN', 'x'), 'FORBIDDEN'],
        [new SfuError('CANNOT_CONSUME', 'x'), 'MEDIA_REJECTED'],
        [new SfuError('BAD_REQUEST', 'x'), 'MEDIA_REJECTED'],
        [new SfuError('INTERNAL', 'x'), 'INTERNAL'],
        [new Error('boom'), 'INTERNAL'],
        [Object.assign(new Error('not ours'), { code: 'FORBIDDEN' }), 'INTERNAL'],
        [new BlockRtcError('RATE_LIMITED'), 'RATE_LIMITED'],
      ];
      for (const [err, code] of cases) {
        s.failures.set('sfu-a', [err]);
        const got = await s.service.media(cm, callId, 'restartIce', { transportId: 't' } as never).catch((e: BlockRtcError) => e);
        expect(got).toBeInstanceOf(BlockRtcError);
        expect([String((err as SfuError).code), (got as BlockRtcError).code]).toEqual([String((err as SfuError).code), code]);
        if (err instanceof SfuError && code !== 'INTERNAL') expect((got as BlockRtcError).message).toBe('x');
      }
      expect((s.failures.get('sfu-a') ?? []).length).toBe(0);
      const codes: SfuErrorCode[] = [];
      expect(codes).toEqual([]);
    });
  });

  describe('history', () => {
    it('lists calls with their participants, paging by time', async () => {
      const s = setup();
      const [me, b] = [addr(), addr()];
      const first = await start(s, connOf(me), [b], 'video');
      await s.service.cancel(connOf(me), req(first.callId));
      await new Promise((r) => setTimeout(r, 5));
      const second = await start(s, connOf(me), [b]);
      const all = await s.service.history(connOf(me), { type: 'call.history', id: 'h', limit: 10 });
      expect(all.calls.map((c) => c.callId)).toEqual([second.callId, first.callId]);
      const c = all.calls[1]!;
      expect(c).toMatchObject({ kind: 'video', initiator: me, answeredAt: null, endReason: 'cancelled', createdAt: expect.any(String), endedAt: expect.any(String) });
      expect(all.calls[0]!.endedAt).toBeNull();
      expect(c.participants.map((p) => [p.address, p.state])).toEqual([
        [me, 'accepted'],
        [b, 'missed'],
      ]);
      const firstRow = await state(s, first.callId);
      const older = await s.service.history(connOf(me), { type: 'call.history', id: 'h', limit: 10, before: new Date(firstRow.participants[0]!.invitedAt.getTime() + 1).toISOString() });
      expect(older.calls.map((x) => x.callId)).toEqual([first.callId]);
      expect((await s.service.history(connOf(me), { type: 'call.history', id: 'h', limit: 1 })).calls).toHaveLength(1);
      await s.service.accept(connOf(b), req(second.callId));
      const answered = (await s.service.history(connOf(b), { type: 'call.history', id: 'h', limit: 1 })).calls[0]!;
      expect(answered.answeredAt).toEqual(expect.any(String));
    });
  });

  describe('sweeps', () => {
    it('turns invitations that rang too long into missed, ending calls nobody can answer', async () => {
      const s = setup();
      const [me, b, c] = [addr(), addr(), addr()];
      const { callId } = await start(s, connOf(me), [b, c]);
      await s.service.reject(connOf(b), req(callId));
      const only = await start(s, connOf(me), [addr()]);
      await query(url, `update call_participants set invited_at = now() - interval '31 seconds' where call_id in ($1, $2)`, [callId, only.callId]);
      await (s.service as unknown as { expireRinging(): Promise<void> }).expireRinging();
      const missed = s.of('call.participant').filter((e) => e.data.state === 'missed' && e.data.callId === callId);
      expect(missed).toEqual([me, b, c].map((to) => ({ to, ev: 'call.participant', data: { callId, address: c, state: 'missed' } })));
      // One rejected and one missed: rejected. Only missed: missed.
      expect((await state(s, callId)).call.endReason).toBe('rejected');
      expect((await state(s, only.callId)).call.endReason).toBe('missed');
      // One busy and one missed: missed.
      const [y, busy, z] = [addr(), addr(), addr()];
      const other = await start(s, connOf(y), [busy]);
      await join(s, connOf(busy), other.callId);
      const mixed = await start(s, connOf(me), [busy, z]);
      await query(url, `update call_participants set invited_at = now() - interval '31 seconds' where call_id = $1`, [mixed.callId]);
      await (s.service as unknown as { expireRinging(): Promise<void> }).expireRinging();
      expect((await state(s, mixed.callId)).call.endReason).toBe('missed');
      const fresh = await start(s, connOf(me), [addr()]);
      await (s.service as unknown as { expireRinging(): Promise<void> }).expireRinging();
      expect((await state(s, fresh.callId)).call.endedAt).toBeNull();
    });

    it('never rings an invitee who blocked the caller: it stays ringing for the caller and ends missed, like someone offline', async () => {
      const [me, blocker, friend] = [addr(), addr(), addr()];
      const relations = openRelations();
      relations.get = async (actor, peer) => ({ blockedByPeer: actor === me && peer === blocker, blocking: false, accepted: true });
      const s = setup({ relations });
      const res = await start(s, connOf(me), [blocker, friend]);
      expect(res.participants.map((p) => [p.address, p.state])).toEqual([
        [me, 'accepted'],
        [blocker, 'ringing'],
        [friend, 'ringing'],
      ]);
      expect(s.of('call.incoming').map((e) => e.to)).toEqual([friend]);
      // Only the blocker invited: the call is not ended as busy (that would tell the caller something).
      const alone = await start(s, connOf(me), [blocker]);
      expect(s.of('call.incoming').map((e) => e.to)).toEqual([friend]);
      expect((await state(s, alone.callId)).call.endedAt).toBeNull();
      await query(url, `update call_participants set invited_at = now() - interval '31 seconds' where call_id = $1`, [alone.callId]);
      await (s.service as unknown as { expireRinging(): Promise<void> }).expireRinging();
      expect((await state(s, alone.callId)).call.endReason).toBe('missed');
      // The blocker calling the caller rings as usual.
      await start(s, connOf(blocker), [me]);
      expect(s.of('call.incoming').map((e) => e.to)).toEqual([friend, me]);
    });

    it('ends as busy a call whose last ringing invitee went missing while the others were busy', async () => {
      const s = setup();
      const [x, busy] = [addr(), addr()];
      const other = await start(s, connOf(x), [busy]);
      await join(s, connOf(busy), other.callId);
      const me = addr();
      const { callId } = await start(s, connOf(me), [busy, addr()]);
      await query(url, `update call_participants set state = 'busy' where call_id = $1 and state = 'ringing'`, [callId]);
      await (s.service as unknown as { endIfUnanswerable(id: string): Promise<void> }).endIfUnanswerable(callId);
      expect((await state(s, callId)).call.endReason).toBe('busy');
      // Already ended, or unknown: nothing happens.
      await (s.service as unknown as { endIfUnanswerable(id: string): Promise<void> }).endIfUnanswerable(callId);
      await (s.service as unknown as { endIfUnanswerable(id: string): Promise<void> }).endIfUnanswerable('00000000-0000-4000-8000-000000000000');
      expect(s.of('call.ended').filter((e) => e.data.callId === callId)).toHaveLength(3);
    });

    it('moves the calls of a media node that stopped heartbeating and asks their joined participants to rejoin', async () => {
      const s = setup({ nodes: [] });
      const now = Date.now();
      await s.registry.heartbeat('sfu-dead', [{ index: 0, alive: true, consumers: 0, producers: 0, rooms: 0, cpu: 0 }], false, now);
      const [me, b] = [addr(), addr()];
      const live = await start(s, connOf(me), [b]);
      await join(s, connOf(me), live.callId);
      const ended = await start(s, connOf(me), [b]);
      await s.service.cancel(connOf(me), req(ended.callId));
      await s.registry.place(ended.callId, now);
      await s.registry.heartbeat('sfu-dead', [{ index: 0, alive: true, consumers: 0, producers: 0, rooms: 0, cpu: 0 }], false, now - 20_000);
      await s.registry.heartbeat('sfu-new', [{ index: 0, alive: true, consumers: 0, producers: 0, rooms: 0, cpu: 0 }], false, now);
      const claim = vi.spyOn(s.registry, 'claimRecovery');
      await (s.service as unknown as { recoverDeadNodes(): Promise<void> }).recoverDeadNodes();
      expect(claim).toHaveBeenCalledWith('sfu-dead', 'sig-1');
      expect((await state(s, live.callId)).call.sfuNode).toBe('sfu-new');
      expect(await s.registry.lookup(ended.callId)).toBeNull();
      expect(s.of('call.rejoin')).toEqual([{ to: me, ev: 'call.rejoin', data: { callId: live.callId, reason: 'media node failed' } }]);
      expect(await s.registry.staleNodes(Date.now())).toEqual([]);
      expect(s.log.warn).toHaveBeenCalledWith({ node: 'sfu-dead', calls: 2 }, 'media node stopped heartbeating; moving its calls');
    });

    it('leaves a dead node to the signaling node that claimed it', async () => {
      const s = setup({ nodes: [] });
      await s.registry.heartbeat('sfu-dead', [{ index: 0, alive: true, consumers: 0, producers: 0, rooms: 0, cpu: 0 }], false, Date.now() - 20_000);
      vi.spyOn(s.registry, 'claimRecovery').mockResolvedValue(false);
      const callsOn = vi.spyOn(s.registry, 'callsOn');
      await (s.service as unknown as { recoverDeadNodes(): Promise<void> }).recoverDeadNodes();
      expect(callsOn).not.toHaveBeenCalled();
      expect(await s.registry.staleNodes(Date.now())).toEqual(['sfu-dead']);
    });

    it('keeps a moved call without a placement when no node is left', async () => {
      const s = setup({ nodes: [] });
      const now = Date.now();
      await s.registry.heartbeat('sfu-dead', [{ index: 0, alive: true, consumers: 0, producers: 0, rooms: 0, cpu: 0 }], false, now);
      const me = addr();
      const live = await start(s, connOf(me), [addr()]);
      await s.registry.heartbeat('sfu-dead', [{ index: 0, alive: true, consumers: 0, producers: 0, rooms: 0, cpu: 0 }], false, now - 20_000);
      const setPlacement = vi.spyOn(s.calls, 'setPlacement');
      await (s.service as unknown as { recoverDeadNodes(): Promise<void> }).recoverDeadNodes();
      expect(setPlacement).not.toHaveBeenCalled();
      expect((await state(s, live.callId)).call.sfuNode).toBe('sfu-dead');
    });

    it('runs both sweeps on timers from start() until stop(), logging their failures', async () => {
      vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
      const s = setup();
      const svc = s.service as unknown as { expireRinging(): Promise<void>; recoverDeadNodes(): Promise<void> };
      const ring = vi.spyOn(svc, 'expireRinging').mockRejectedValue(new Error('ring'));
      const recover = vi.spyOn(svc, 'recoverDeadNodes').mockRejectedValue(new Error('recover'));
      s.service.start();
      await vi.advanceTimersByTimeAsync(999);
      expect(ring).not.toHaveBeenCalled();
      expect(recover).toHaveBeenCalledTimes(19);
      await vi.advanceTimersByTimeAsync(1);
      expect(ring).toHaveBeenCalledTimes(1);
      expect(s.log.warn).toHaveBeenCalledWith({ err: expect.objectContaining({ message: 'ring' }) }, 'ring sweep failed');
      expect(s.log.warn).toHaveBeenCalledWith({ err: expect.objectContaining({ message: 'recover' }) }, 'media recovery failed');
      s.service.stop();
      s.service.stop();
      await vi.advanceTimersByTimeAsync(5_000);
      expect(ring).toHaveBeenCalledTimes(1);
      expect(recover).toHaveBeenCalledTimes(20);
    });

    it('logs events the bus could not publish, once per burst', async () => {
      const s = setup();
      s.bus.publish.mockRejectedValue(new Error('bus down'));
      const me = addr();
      const { callId } = await start(s, connOf(me), [addr()]);
      await s.service.cancel(connOf(me), req(callId));
      await new Promise((r) => setImmediate(r));
      // call.incoming and call.ended both failed to publish; an outage is one line, not one per event.
      const warned = s.log.warn.mock.calls.filter((c) => c[1] === 'event not published; its users will be told to resync');
      expect(warned).toHaveLength(1);
      expect(warned[0]![0]).toMatchObject({ err: 'bus down' });
    });
  });

  describe('more than one call, and who ends what', () => {
    it('keeps a connection in several calls apart', async () => {
      const s = setup();
      const me = addr();
      const cm = connOf(me);
      const one = await start(s, connOf(me), [addr()]);
      const two = await start(s, connOf(me), [addr()]);
      await join(s, cm, one.callId);
      await join(s, cm, two.callId);
      const joined = (s.service as unknown as { joined: Map<string, Map<string, unknown>> }).joined;
      expect(await codeOf(s.service.media(cm, one.callId, 'createTransport', { direction: 'send' }))).toBe('ok');
      await s.service.leave(cm, req(one.callId));
      expect(await codeOf(s.service.media(cm, one.callId, 'createTransport', { direction: 'send' }))).toBe('NOT_IN_CALL');
      expect(await codeOf(s.service.media(cm, two.callId, 'createTransport', { direction: 'send' }))).toBe('ok');
      expect(joined.get(cm.id)!.size).toBe(1);
      await s.service.leave(cm, req(two.callId));
      expect(joined.has(cm.id)).toBe(false);
    });

    it('leaves an unanswered call going when an invitee who never answered is the last to leave', async () => {
      const s = setup();
      const [me, b] = [addr(), addr()];
      const { callId } = await start(s, connOf(me), [b]);
      vi.spyOn(s.calls, 'markAnswered').mockResolvedValue();
      const cb = connOf(b);
      await join(s, cb, callId);
      await s.service.leave(cb, req(callId));
      expect((await state(s, callId)).call.endedAt).toBeNull();
    });

    it('does not end a call on a rejection while another invitee accepted, is in it or left it', async () => {
      const s = setup();
      const me = addr();
      const cm = connOf(me);
      // Accepted, not joined.
      {
        const [b, c] = [addr(), addr()];
        const { callId } = await start(s, cm, [b, c]);
        await s.service.accept(connOf(b), req(callId));
        await s.service.reject(connOf(c), req(callId));
        expect((await state(s, callId)).call.endedAt).toBeNull();
      }
      // Joined.
      {
        const [b, c] = [addr(), addr()];
        const { callId } = await start(s, cm, [b, c]);
        await join(s, connOf(b), callId);
        await s.service.reject(connOf(c), req(callId));
        expect((await state(s, callId)).call.endedAt).toBeNull();
      }
      // Left while the caller is still in.
      {
        const [b, c] = [addr(), addr()];
        const { callId } = await start(s, cm, [b, c]);
        await join(s, connOf(me), callId);
        const cb = connOf(b);
        await join(s, cb, callId);
        await s.service.leave(cb, req(callId));
        await s.service.reject(connOf(c), req(callId));
        expect((await state(s, callId)).call.endedAt).toBeNull();
      }
    });

    it('ends a call that lost its media placement without asking a media node', async () => {
      const s = setup();
      const [me, b] = [addr(), addr()];
      const { callId } = await start(s, connOf(me), [b]);
      await s.registry.release(callId);
      expect(await s.service.cancel(connOf(me), req(callId))).toEqual({});
      expect((await state(s, callId)).call.endReason).toBe('cancelled');
      expect(s.sfuCalls.filter((c) => c.method === 'closeCall')).toEqual([]);
      expect(s.of('call.ended').map((e) => e.to)).toEqual([me, b]);
    });
  });
});
