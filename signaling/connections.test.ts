import { describe, expect, it, vi } from 'vitest';
import { encodeControl, encodeDelivery } from '../infra/bus/bus.ts';
import { MemoryBus } from '../infra/bus/memory.ts';
import { captureLog, fakeConnection, settle } from '../testkit/fakes.ts';
import { createMetrics } from './metrics.ts';
import { Connections } from './connections.ts';

const ALICE = '0x1111111111111111111111111111111111111111';
const BOB = '0x2222222222222222222222222222222222222222';
const MAX_BUFFERED = 1024;

function setup() {
  const bus = new MemoryBus();
  const subscribe = vi.spyOn(bus, 'subscribe');
  const unsubscribe = vi.spyOn(bus, 'unsubscribe');
  const metrics = createMetrics();
  const cap = captureLog();
  const connections = new Connections(bus, metrics, cap.log, MAX_BUFFERED);
  const gauge = async () => (await metrics.connections.get()).values[0]?.value ?? 0;
  return { bus, subscribe, unsubscribe, metrics, cap, connections, gauge };
}

const frame = (n: number) => JSON.stringify({ ev: 'chat.typing', data: { from: BOB, typing: n > 0 } });

describe('Connections: subscriptions', () => {
  it("subscribes to a user's channel once for the first connection and unsubscribes once after the last", async () => {
    const t = setup();
    const a = fakeConnection(ALICE).conn;
    const b = fakeConnection(ALICE).conn;
    await t.connections.add(a);
    await t.connections.add(b);
    expect(t.subscribe).toHaveBeenCalledTimes(1);
    expect(t.subscribe).toHaveBeenCalledWith(ALICE);
    expect(t.connections.size).toBe(2);
    expect(await t.gauge()).toBe(2);

    await t.connections.remove(a);
    expect(t.unsubscribe).not.toHaveBeenCalled();
    await t.connections.remove(b);
    expect(t.unsubscribe).toHaveBeenCalledTimes(1);
    expect(t.unsubscribe).toHaveBeenCalledWith(ALICE);
    expect(t.connections.size).toBe(0);
    expect(await t.gauge()).toBe(0);
    expect(t.connections.local(ALICE)).toBeUndefined();
  });

  it('subscribes per user', async () => {
    const t = setup();
    await t.connections.add(fakeConnection(ALICE).conn);
    await t.connections.add(fakeConnection(BOB).conn);
    expect(t.subscribe.mock.calls).toEqual([[ALICE], [BOB]]);
  });

  it('ignores removing a connection twice or one it never held', async () => {
    const t = setup();
    const a = fakeConnection(ALICE).conn;
    const b = fakeConnection(ALICE).conn;
    await t.connections.add(a);
    await t.connections.remove(b);
    await t.connections.remove(fakeConnection(BOB).conn);
    expect(t.connections.size).toBe(1);
    await t.connections.remove(a);
    await t.connections.remove(a);
    expect(t.connections.size).toBe(0);
    expect(t.unsubscribe).toHaveBeenCalledTimes(1);
  });

  it('keeps the subscription when asked to (draining)', async () => {
    const t = setup();
    const a = fakeConnection(ALICE).conn;
    await t.connections.add(a);
    await t.connections.remove(a, true);
    expect(t.unsubscribe).not.toHaveBeenCalled();
    expect(t.connections.size).toBe(0);
  });

  it('subscribes again for a user who comes back', async () => {
    const t = setup();
    const a = fakeConnection(ALICE).conn;
    await t.connections.add(a);
    await t.connections.remove(a);
    await t.connections.add(fakeConnection(ALICE).conn);
    expect(t.subscribe).toHaveBeenCalledTimes(2);
  });

  it('lets a failed subscription reach the caller (the gateway refuses the connection)', async () => {
    const t = setup();
    t.subscribe.mockRejectedValueOnce(new Error('redis down'));
    await expect(t.connections.add(fakeConnection(ALICE).conn)).rejects.toThrow('redis down');
  });

  it('logs a failed unsubscription instead of throwing', async () => {
    const t = setup();
    const a = fakeConnection(ALICE).conn;
    await t.connections.add(a);
    t.unsubscribe.mockRejectedValueOnce(new Error('redis down'));
    await expect(t.connections.remove(a)).resolves.toBeUndefined();
    expect(t.cap.at('warn')).toEqual([expect.objectContaining({ msg: 'unsubscribe failed' })]);
    expect(t.connections.size).toBe(0);
  });

  it('lists every connection it holds', async () => {
    const t = setup();
    const conns = [fakeConnection(ALICE).conn, fakeConnection(ALICE).conn, fakeConnection(BOB).conn];
    for (const c of conns) await t.connections.add(c);
    expect(new Set(t.connections.all())).toEqual(new Set(conns));
    expect(t.connections.local(ALICE)?.size).toBe(2);
  });
});

describe('Connections: delivery', () => {
  it("writes a user's frames to each of that user's connections, except the skipped one", async () => {
    const t = setup();
    const a = fakeConnection(ALICE);
    const b = fakeConnection(ALICE);
    const other = fakeConnection(BOB);
    for (const c of [a, b, other]) await t.connections.add(c.conn);
    await t.bus.publish(ALICE, encodeDelivery(frame(1), a.conn.id));
    await t.bus.publish(ALICE, encodeDelivery(frame(2)));
    await settle();
    expect(a.ws.sent).toEqual([frame(2)]);
    expect(b.ws.sent).toEqual([frame(1), frame(2)]);
    expect(other.ws.sent).toEqual([]);
  });

  it('skips closed connections', async () => {
    const t = setup();
    const a = fakeConnection(ALICE);
    const b = fakeConnection(ALICE);
    await t.connections.add(a.conn);
    await t.connections.add(b.conn);
    a.conn.close(1000, 'bye');
    await t.bus.publish(ALICE, encodeDelivery(frame(1), '', Date.now()));
    await settle();
    expect(a.ws.sent).toEqual([]);
    expect(b.ws.sent).toEqual([frame(1)]);
    // Only the frame actually written counts as delivered.
    expect((await t.metrics.messagesOut.get()).values[0]!.value).toBe(1);
  });

  it('closes a slow consumer with 4008 instead of buffering more, and still serves the others', async () => {
    const t = setup();
    const slow = fakeConnection(ALICE);
    const fine = fakeConnection(ALICE);
    await t.connections.add(slow.conn);
    await t.connections.add(fine.conn);
    slow.ws.bufferedAmount = MAX_BUFFERED; // at the limit: still written
    await t.bus.publish(ALICE, encodeDelivery(frame(1)));
    await settle();
    expect(slow.ws.sent).toEqual([frame(1)]);
    slow.ws.bufferedAmount = MAX_BUFFERED + 1;
    await t.bus.publish(ALICE, encodeDelivery(frame(2), '', Date.now()));
    await t.bus.publish(ALICE, encodeDelivery(frame(3)));
    await settle();
    expect(slow.ws.sent).toEqual([frame(1)]);
    expect((await t.metrics.messagesOut.get()).values[0]!.value).toBe(1);
    expect(slow.ws.closes).toEqual([expect.objectContaining({ code: 4008, reason: 'slow consumer' })]);
    expect(slow.conn.closed).toBe(true);
    expect(fine.ws.sent).toEqual([frame(1), frame(2), frame(3)]);
  });

  it('times deliveries that carry a publish time, and only those', async () => {
    const t = setup();
    const a = fakeConnection(ALICE);
    const b = fakeConnection(ALICE);
    await t.connections.add(a.conn);
    await t.connections.add(b.conn);
    await t.bus.publish(ALICE, encodeDelivery(frame(1), '', Date.now() - 20));
    await t.bus.publish(ALICE, encodeDelivery(frame(2)));
    await settle();
    expect((await t.metrics.messagesOut.get()).values[0]!.value).toBe(2);
    const hist = (await t.metrics.deliveryLatency.get()).values;
    expect(hist.find((v) => v.metricName === 'blockrtc_chat_delivery_seconds_count')!.value).toBe(2);
    expect(hist.find((v) => v.metricName === 'blockrtc_chat_delivery_seconds_sum')!.value).toBeGreaterThanOrEqual(0.04);
  });

  it('drops deliveries for users it holds no connection of', async () => {
    const t = setup();
    const a = fakeConnection(ALICE);
    await t.connections.add(a.conn);
    await t.connections.remove(a.conn, true); // still subscribed, no connection left
    await t.bus.publish(ALICE, encodeDelivery(frame(1)));
    await settle();
    expect(a.ws.sent).toEqual([]);
  });
});

describe('Connections: node-to-node notes', () => {
  it('hands a note on a user channel to the control handler and writes nothing to the user’s sockets', async () => {
    const t = setup();
    const { conn, ws } = fakeConnection(ALICE);
    await t.connections.add(conn);
    const notes: [string, string][] = [];
    t.connections.onControl((user, body) => notes.push([user, body]));
    await t.bus.publish(ALICE, encodeControl(`rel ${BOB}`));
    await t.bus.publish(ALICE, encodeDelivery(frame(1)));
    await settle();
    expect(notes).toEqual([[ALICE, `rel ${BOB}`]]);
    expect(ws.sent).toEqual([frame(1)]);
  });
});
