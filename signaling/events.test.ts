import { afterEach, describe, expect, it, vi } from 'vitest';
import { decodeDelivery, type Bus } from '../infra/bus/bus.ts';
import { MemoryBus } from '../infra/bus/memory.ts';
import { encodeEvent } from '../protocol/frames.ts';
import { captureLog, settle } from '../testkit/fakes.ts';
import { Events } from './events.ts';

const ALICE = '0x1111111111111111111111111111111111111111';
const BOB = '0x2222222222222222222222222222222222222222';
const CAROL = '0x3333333333333333333333333333333333333333';

function setup() {
  const bus = new MemoryBus();
  const got: { user: string; payload: string }[] = [];
  bus.onDeliver((user, payload) => got.push({ user, payload }));
  const cap = captureLog();
  return { bus, got, cap, events: new Events(bus, cap.log) };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('Events', () => {
  it('publishes a typed {ev, data} frame to the user through the bus', async () => {
    const t = setup();
    await t.bus.subscribe(ALICE);
    t.events.toUser(ALICE, 'chat.typing', { from: BOB, typing: true });
    await settle();
    expect(t.got).toHaveLength(1);
    const d = decodeDelivery(t.got[0]!.payload);
    expect(t.got[0]!.user).toBe(ALICE);
    expect(d).toEqual({ skip: '', sentAt: 0, frame: JSON.stringify({ ev: 'chat.typing', data: { from: BOB, typing: true } }) });
    expect(JSON.parse(d.frame)).toEqual({ ev: 'chat.typing', data: { from: BOB, typing: true } });
  });

  it('carries the skipped connection and the publish time', async () => {
    const t = setup();
    await t.bus.subscribe(ALICE);
    t.events.toUser(ALICE, 'presence.update', { address: BOB, online: true, lastSeen: null }, { skip: 'node-1.7', sentAt: 1234 });
    await settle();
    expect(decodeDelivery(t.got[0]!.payload)).toMatchObject({ skip: 'node-1.7', sentAt: 1234 });
  });

  it('sends the same serialised frame to several users', async () => {
    const t = setup();
    const publish = vi.spyOn(t.bus, 'publish');
    for (const u of [ALICE, BOB, CAROL]) await t.bus.subscribe(u);
    t.events.toUsers(new Set([ALICE, BOB, CAROL]), 'call.ended', { callId: 'c1', reason: 'completed' }, { skip: 'x.1' });
    await settle();
    expect(t.got.map((g) => g.user)).toEqual([ALICE, BOB, CAROL]);
    const payloads = new Set(publish.mock.calls.map((c) => c[1]));
    expect(payloads.size).toBe(1);
    expect(decodeDelivery([...payloads][0]!)).toEqual({ skip: 'x.1', sentAt: 0, frame: encodeEvent('call.ended', { callId: 'c1', reason: 'completed' }) });
  });

  it('publishes a pre-encoded frame as it is', async () => {
    const t = setup();
    await t.bus.subscribe(BOB);
    const f = encodeEvent('chat.typing', { from: ALICE, typing: false });
    t.events.frame(BOB, f);
    await settle();
    expect(decodeDelivery(t.got[0]!.payload).frame).toBe(f);
  });

  it('does not throw at the caller when the bus fails', async () => {
    const cap = captureLog();
    const bus = { publish: () => Promise.reject(new Error('redis down')) } as unknown as Bus;
    const events = new Events(bus, cap.log);
    expect(() => events.toUser(ALICE, 'chat.typing', { from: BOB, typing: true })).not.toThrow();
    await settle();
    expect(cap.at('warn')).toHaveLength(1);
  });

  it('logs publish failures once per burst, then a count of the suppressed ones', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2026-01-01T00:00:00.000Z'));
    const cap = captureLog();
    const bus = { publish: vi.fn(() => Promise.reject(new Error('redis down'))) } as unknown as Bus;
    const events = new Events(bus, cap.log);

    for (let i = 0; i < 100; i++) events.toUser(ALICE, 'chat.typing', { from: BOB, typing: true });
    events.toUsers([ALICE, BOB, CAROL], 'chat.typing', { from: BOB, typing: false });
    await settle();
    expect(cap.at('warn')).toEqual([expect.objectContaining({ msg: 'event not published; its users will be told to resync', err: 'redis down', suppressed: 0 })]);

    vi.setSystemTime(Date.now() + 4999);
    events.toUser(ALICE, 'chat.typing', { from: BOB, typing: true });
    await settle();
    expect(cap.at('warn')).toHaveLength(1);

    vi.setSystemTime(Date.now() + 1);
    events.toUser(ALICE, 'chat.typing', { from: BOB, typing: true });
    await settle();
    const warns = cap.at('warn');
    expect(warns).toHaveLength(2);
    expect(warns[1]).toMatchObject({ msg: 'event not published; its users will be told to resync', suppressed: 103 });

    // The count starts again after each warning.
    events.toUser(ALICE, 'chat.typing', { from: BOB, typing: true });
    await settle();
    vi.setSystemTime(Date.now() + 5000);
    events.toUser(ALICE, 'chat.typing', { from: BOB, typing: true });
    await settle();
    expect(cap.at('warn')[2]).toMatchObject({ suppressed: 1 });
  });
});
