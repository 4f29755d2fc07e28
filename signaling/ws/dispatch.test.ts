import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BlockRtcError } from '../../protocol/errors.ts';
import { captureLog, fakeConnection, settle } from '../../testkit/fakes.ts';
import { createMetrics } from '../metrics.ts';
import { Dispatcher, type Handlers } from './dispatch.ts';

const ALICE = '0x1111111111111111111111111111111111111111';
const BOB = '0x2222222222222222222222222222222222222222';

function setup(framesPerSec = 50, handlers: Partial<Handlers> = {}) {
  const metrics = createMetrics();
  const cap = captureLog();
  const refresh = vi.fn(async () => ({ token: 't', expiresAt: '2030-01-01T00:00:00.000Z' }));
  const query = vi.fn(async (_c: unknown, req: { addresses: string[] }) => ({ presence: req.addresses.map((address) => ({ address, online: false, lastSeen: null })) }));
  const all = { 'session.refresh': refresh, 'presence.query': query, ...handlers } as unknown as Handlers;
  const dispatcher = new Dispatcher(all, framesPerSec, metrics, cap.log);
  const { conn, ws } = fakeConnection(ALICE);
  const send = (frame: unknown, binary = false) => dispatcher.handle(conn, Buffer.from(typeof frame === 'string' ? frame : JSON.stringify(frame)), binary);
  const errorCount = async (code: string) => (await metrics.requestErrors.get()).values.find((v) => v.labels.code === code)?.value ?? 0;
  return { metrics, cap, refresh, query, dispatcher, conn, ws, send, errorCount };
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(new Date('2026-01-01T00:00:00.000Z'));
});
afterEach(() => {
  vi.useRealTimers();
});

describe('Dispatcher: valid requests', () => {
  it('answers with the handler result as {re, ok:true, data}', async () => {
    const t = setup();
    t.send({ id: 'r1', type: 'session.refresh' });
    await settle();
    expect(t.ws.frames()).toEqual([{ re: 'r1', ok: true, data: { token: 't', expiresAt: '2030-01-01T00:00:00.000Z' } }]);
    expect(t.refresh).toHaveBeenCalledTimes(1);
    expect(t.refresh.mock.calls[0]).toEqual([t.conn, { id: 'r1', type: 'session.refresh' }]);
    expect((await t.metrics.framesIn.get()).values).toEqual([expect.objectContaining({ labels: { type: 'session.refresh' }, value: 1 })]);
  });

  it('passes the parsed request to the handler and accepts an id of 64 characters', async () => {
    const t = setup();
    const id = 'x'.repeat(64);
    t.send({ id, type: 'presence.query', addresses: [BOB] });
    await settle();
    expect(t.query).toHaveBeenCalledWith(t.conn, { id, type: 'presence.query', addresses: [BOB] });
    expect(t.ws.frames()).toEqual([{ re: id, ok: true, data: { presence: [{ address: BOB, online: false, lastSeen: null }] } }]);
  });

  it('answers concurrent requests by their own ids, in completion order', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const t = setup(50, {
      'session.refresh': (async () => {
        await gate;
        return { token: 'slow', expiresAt: 'x' };
      }) as unknown as Handlers['session.refresh'],
    });
    t.send({ id: 'slow', type: 'session.refresh' });
    t.send({ id: 'fast', type: 'presence.query', addresses: [BOB] });
    await settle();
    release();
    await settle();
    expect(t.ws.frames().map((f) => f.re)).toEqual(['fast', 'slow']);
  });
});

describe('Dispatcher: bad frames get an error reply and the connection stays', () => {
  it.each([
    ['bad JSON', '{"id":"r1",', 'BAD_JSON', null],
    ['a JSON array', '[1,2]', 'BAD_REQUEST', null],
    ['a JSON string', '"hello"', 'BAD_REQUEST', null],
    ['JSON null', 'null', 'BAD_REQUEST', null],
    ['a number', '42', 'BAD_REQUEST', null],
    ['a missing id', { type: 'session.refresh' }, 'BAD_REQUEST', null],
    ['an empty id', { id: '', type: 'session.refresh' }, 'BAD_REQUEST', null],
    ['a numeric id', { id: 7, type: 'session.refresh' }, 'BAD_REQUEST', null],
    ['an id of 65 characters', { id: 'x'.repeat(65), type: 'session.refresh' }, 'BAD_REQUEST', null],
    ['an unknown type', { id: 'r1', type: 'chat.explode' }, 'UNKNOWN_TYPE', 'r1'],
    ['a missing type', { id: 'r1' }, 'UNKNOWN_TYPE', 'r1'],
    ['a prototype key as type', { id: 'r1', type: 'toString' }, 'UNKNOWN_TYPE', 'r1'],
  ] as const)('%s → %s', async (_what, frame, code, re) => {
    const t = setup();
    t.send(frame);
    await settle();
    const [reply] = t.ws.frames();
    expect(t.ws.sent).toHaveLength(1);
    expect(reply).toMatchObject({ re, ok: false, error: { code } });
    expect(typeof (reply!.error as { message: unknown }).message).toBe('string');
    expect(t.ws.closes).toEqual([]);
    expect(t.conn.closed).toBe(false);
    expect(t.refresh).not.toHaveBeenCalled();
    expect(await t.errorCount(code)).toBe(1);
    // The connection still serves requests afterwards.
    t.send({ id: 'after', type: 'session.refresh' });
    await settle();
    expect(t.ws.frames().at(-1)).toMatchObject({ re: 'after', ok: true });
  });

  it('quotes an unknown type in the message, cut short', async () => {
    const t = setup();
    t.send({ id: 'r1', type: 'y'.repeat(500) });
    const msg = (t.ws.frames()[0]!.error as { message: string }).message;
    expect(msg).toContain('Unknown request type "yyy');
    expect(msg.length).toBeLessThan(120);
  });

  it('refuses invalid fields with INVALID_FIELDS and per-field details', async () => {
    const t = setup();
    t.send({ id: 'r2', type: 'presence.query', addresses: ['not-an-address', BOB] });
    await settle();
    const [reply] = t.ws.frames();
    expect(reply).toMatchObject({ re: 'r2', ok: false, error: { code: 'INVALID_FIELDS' } });
    const details = (reply!.error as { details: { path: string; message: string }[] }).details;
    expect(details).toEqual([{ path: 'addresses.0', message: expect.stringContaining('address') }]);
    expect(t.query).not.toHaveBeenCalled();
    expect(t.conn.closed).toBe(false);
  });

  it('refuses unknown fields (a client cannot name another sender)', async () => {
    const t = setup();
    t.send({ id: 'r3', type: 'session.refresh', address: BOB });
    await settle();
    expect(t.ws.frames()[0]).toMatchObject({ re: 'r3', ok: false, error: { code: 'INVALID_FIELDS' } });
    expect(t.refresh).not.toHaveBeenCalled();
  });

  it('reports at most 10 field problems', async () => {
    const t = setup();
    t.send({ id: 'r4', type: 'presence.query', addresses: Array.from({ length: 30 }, (_, i) => `bad${i}`) });
    const details = (t.ws.frames()[0]!.error as { details: unknown[] }).details;
    expect(details).toHaveLength(10);
  });

  it('refuses binary frames with BAD_REQUEST even when they hold a valid request', async () => {
    const t = setup();
    t.send({ id: 'r5', type: 'session.refresh' }, true);
    await settle();
    expect(t.ws.frames()).toEqual([{ re: null, ok: false, error: { code: 'BAD_REQUEST', message: expect.stringContaining('Binary') } }]);
    expect(t.refresh).not.toHaveBeenCalled();
    expect(t.conn.closed).toBe(false);
  });
});

describe('Dispatcher: strikes', () => {
  it('closes with 1008 on the 11th bad frame within 10 s, after a POLICY_VIOLATION frame', async () => {
    const t = setup();
    for (let i = 0; i < 10; i++) t.send('nope');
    expect(t.ws.closes).toEqual([]);
    expect(t.ws.sent).toHaveLength(10);
    t.send('nope');
    expect(t.ws.closes).toEqual([expect.objectContaining({ code: 1008, reason: 'too many bad frames' })]);
    expect(t.conn.closed).toBe(true);
    const frames = t.ws.frames();
    expect(frames.at(-2)).toMatchObject({ re: null, ok: false, error: { code: 'BAD_JSON' } });
    expect(frames.at(-1)).toMatchObject({ re: null, ok: false, error: { code: 'POLICY_VIOLATION' } });
    const warns = t.cap.at('warn');
    expect(warns).toHaveLength(1);
    expect(warns[0]).toMatchObject({ user: ALICE, ip: '127.0.0.1', reason: 'too many bad frames', msg: 'closing abusive connection' });
  });

  it('counts every kind of rejected frame as a strike', async () => {
    const t = setup();
    const bad = ['x', '[]', { type: 'session.refresh' }, { id: 'a', type: 'nope' }, { id: 'b', type: 'session.refresh', extra: 1 }];
    for (const f of [...bad, ...bad]) t.send(f);
    t.send(Buffer.from([1, 2, 3]).toString(), true);
    expect(t.ws.closes).toHaveLength(1);
    expect(t.ws.closes[0]!.code).toBe(1008);
  });

  it('forgets strikes once the 10 s window has passed', async () => {
    const t = setup();
    for (let i = 0; i < 10; i++) t.send('nope');
    vi.setSystemTime(Date.now() + 10_000);
    for (let i = 0; i < 10; i++) t.send('nope');
    expect(t.ws.closes).toEqual([]);
    t.send('nope');
    expect(t.ws.closes).toHaveLength(1);
  });

  it('does not count successful requests as strikes', async () => {
    const t = setup();
    for (let i = 0; i < 10; i++) t.send('nope');
    for (let i = 0; i < 20; i++) t.send({ id: `ok${i}`, type: 'session.refresh' });
    await settle();
    expect(t.ws.closes).toEqual([]);
  });
});

describe('Dispatcher: frame rate', () => {
  it('answers RATE_LIMITED with retryAfterMs past the per-second limit, then serves again in the next second', async () => {
    const t = setup(5);
    const start = Date.now();
    for (let i = 0; i < 5; i++) t.send({ id: `r${i}`, type: 'session.refresh' });
    vi.setSystemTime(start + 300);
    t.send({ id: 'r5', type: 'session.refresh' });
    await settle();
    const frames = t.ws.frames();
    expect(frames.filter((f) => f.ok === true)).toHaveLength(5);
    const limited = frames.find((f) => f.ok === false);
    expect(limited).toEqual({ re: null, ok: false, error: { code: 'RATE_LIMITED', message: expect.any(String), retryAfterMs: 700 } });
    expect(t.refresh).toHaveBeenCalledTimes(5);
    expect((await t.metrics.rateLimited.get()).values).toEqual([expect.objectContaining({ labels: { limit: 'frames' }, value: 1 })]);
    expect(t.conn.closed).toBe(false);

    vi.setSystemTime(start + 1000);
    t.send({ id: 'next', type: 'session.refresh' });
    await settle();
    expect(t.ws.frames().at(-1)).toMatchObject({ re: 'next', ok: true });
  });

  it('closes a flood (4× the rate within a second) with 1008', async () => {
    const t = setup(1);
    t.send({ id: 'r0', type: 'session.refresh' });
    for (let i = 1; i < 4; i++) t.send({ id: `r${i}`, type: 'session.refresh' });
    expect(t.ws.closes).toEqual([]);
    t.send({ id: 'r4', type: 'session.refresh' });
    expect(t.ws.closes).toEqual([expect.objectContaining({ code: 1008, reason: 'frame flood' })]);
    expect(t.ws.frames().at(-1)).toMatchObject({ re: null, ok: false, error: { code: 'POLICY_VIOLATION' } });
    expect(t.cap.at('warn')[0]).toMatchObject({ reason: 'frame flood' });
    await settle();
    expect(t.refresh).toHaveBeenCalledTimes(1);
  });

  it('closes a fast client with 1008 at the default rate of 50/s (rate-limit refusals count as strikes)', async () => {
    const t = setup(50);
    for (let i = 0; i < 60; i++) t.send({ id: `r${i}`, type: 'session.refresh' });
    expect(t.ws.closes).toEqual([]);
    t.send({ id: 'r60', type: 'session.refresh' });
    // 50 accepted + 11 refused: the strike limit closes it before the 4× flood limit is reached.
    expect(t.ws.closes).toEqual([expect.objectContaining({ code: 1008 })]);
  });
});

describe('Dispatcher: handler failures', () => {
  it('answers a BlockRtcError with its own code, message and extras, without an error log', async () => {
    const t = setup(50, {
      'session.refresh': (async () => {
        throw new BlockRtcError('RATE_LIMITED', 'slow down', { retryAfterMs: 1234 });
      }) as unknown as Handlers['session.refresh'],
    });
    t.send({ id: 'r1', type: 'session.refresh' });
    await settle();
    expect(t.ws.frames()).toEqual([{ re: 'r1', ok: false, error: { code: 'RATE_LIMITED', message: 'slow down', retryAfterMs: 1234 } }]);
    expect(t.cap.at('error')).toEqual([]);
    expect(await t.errorCount('RATE_LIMITED')).toBe(1);
    expect(t.conn.closed).toBe(false);
  });

  it('answers a plain Error with INTERNAL (no internals leaked) and logs it once', async () => {
    const t = setup(50, {
      'session.refresh': (async () => {
        throw new Error('connection to 10.0.0.5:5432 refused');
      }) as unknown as Handlers['session.refresh'],
    });
    t.send({ id: 'r1', type: 'session.refresh' });
    await settle();
    expect(t.ws.frames()).toEqual([{ re: 'r1', ok: false, error: { code: 'INTERNAL', message: expect.any(String) } }]);
    expect(t.ws.sent[0]).not.toContain('10.0.0.5');
    const errors = t.cap.at('error');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ type: 'session.refresh', user: ALICE, msg: 'request failed', err: { message: 'connection to 10.0.0.5:5432 refused' } });
    expect(await t.errorCount('INTERNAL')).toBe(1);
    // A failing handler is not the client's fault: no strike.
    expect(t.conn.strikes).toBe(0);
  });

  it('sends nothing when the connection closed before the handler finished', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const t = setup(50, {
      'session.refresh': (async () => {
        await gate;
        return { token: 't', expiresAt: 'x' };
      }) as unknown as Handlers['session.refresh'],
    });
    t.send({ id: 'r1', type: 'session.refresh' });
    t.conn.close(1000, 'bye');
    release();
    await settle();
    expect(t.ws.sent).toEqual([]);
  });
});
