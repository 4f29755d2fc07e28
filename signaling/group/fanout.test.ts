import { describe, expect, it, vi } from 'vitest';
import { encodeControl, encodeGroupDelivery } from '../../infra/bus/bus.ts';
import { MemoryBus } from '../../infra/bus/memory.ts';
import { captureLog, fakeConnection, settle } from '../../testkit/fakes.ts';
import { Connections } from '../connections.ts';
import { createMetrics } from '../metrics.ts';
import { encodeGroupControl, GroupFanout } from './fanout.ts';

const ALICE = '0x1111111111111111111111111111111111111111';
const BOB = '0x2222222222222222222222222222222222222222';
const CAROL = '0x3333333333333333333333333333333333333333';
const G1 = '6a0d5c3e-0000-4000-8000-000000000001';
const G2 = '6a0d5c3e-0000-4000-8000-000000000002';

function setup(groupsOf: Record<string, string[]>) {
  const bus = new MemoryBus();
  const subscribeGroup = vi.spyOn(bus, 'subscribeGroup');
  const unsubscribeGroup = vi.spyOn(bus, 'unsubscribeGroup');
  const metrics = createMetrics();
  const cap = captureLog();
  const connections = new Connections(bus, metrics, cap.log, 1 << 20);
  const memberships = { ...groupsOf };
  const fanout = new GroupFanout({ bus, connections, activeGroupIds: async (a) => memberships[a] ?? [], metrics, log: cap.log });
  const join = async (address: string) => {
    const c = fakeConnection(address);
    await connections.add(c.conn);
    await fanout.connected(address);
    return c;
  };
  const leave = async (c: ReturnType<typeof fakeConnection>) => {
    await connections.remove(c.conn);
    fanout.disconnected(c.conn.address);
  };
  const frame = (n: number) => JSON.stringify({ ev: 'group.typing', data: { group: G1, from: CAROL, typing: n > 0 } });
  return { bus, subscribeGroup, unsubscribeGroup, fanout, join, leave, frame, memberships };
}

describe('GroupFanout', () => {
  it('subscribes to a group once while it holds a connection of any member, and unsubscribes after the last', async () => {
    const t = setup({ [ALICE]: [G1, G2], [BOB]: [G1] });
    const a1 = await t.join(ALICE);
    const a2 = await t.join(ALICE);
    const b = await t.join(BOB);
    expect(t.subscribeGroup.mock.calls.map((c) => c[0]).sort()).toEqual([G1, G2]);
    expect([...t.fanout.localMembers(G1)!].sort()).toEqual([ALICE, BOB]);
    await t.leave(a1);
    expect(t.unsubscribeGroup).not.toHaveBeenCalled();
    await t.leave(a2);
    expect(t.unsubscribeGroup.mock.calls.map((c) => c[0])).toEqual([G2]);
    await t.leave(b);
    expect(t.unsubscribeGroup.mock.calls.map((c) => c[0])).toEqual([G2, G1]);
    expect(t.fanout.size).toBe(0);
  });

  it('writes one published event to every local member connection, except the skipped one and the excepted member', async () => {
    const t = setup({ [ALICE]: [G1], [BOB]: [G1], [CAROL]: [G1] });
    const a = await t.join(ALICE);
    const a2 = await t.join(ALICE);
    const b = await t.join(BOB);
    const c = await t.join(CAROL);
    await t.bus.publishGroup(G1, encodeGroupDelivery(t.frame(1), a.conn.id));
    await settle();
    expect([a.ws.sent.length, a2.ws.sent.length, b.ws.sent.length, c.ws.sent.length]).toEqual([0, 1, 1, 1]);
    await t.bus.publishGroup(G1, encodeGroupDelivery(t.frame(2), '', 0, CAROL));
    await settle();
    expect([a.ws.sent.length, a2.ws.sent.length, b.ws.sent.length, c.ws.sent.length]).toEqual([1, 2, 2, 1]);
    expect(b.ws.sent[1]).toBe(t.frame(2));
  });

  it('stops writing to a dropped member at once, while the node stays subscribed for the others', async () => {
    const t = setup({ [ALICE]: [G1], [BOB]: [G1] });
    const a = await t.join(ALICE);
    const b = await t.join(BOB);
    await t.bus.publishGroup(G1, encodeControl(encodeGroupControl({ drop: BOB })));
    await t.bus.publishGroup(G1, encodeGroupDelivery(t.frame(1)));
    await settle();
    expect(a.ws.sent).toHaveLength(1);
    expect(b.ws.sent).toHaveLength(0);
    expect(t.unsubscribeGroup).not.toHaveBeenCalled();
    // A drop for the last local member ends the subscription.
    await t.bus.publishGroup(G1, encodeControl(encodeGroupControl({ drop: ALICE })));
    await settle();
    expect(t.unsubscribeGroup).toHaveBeenCalledWith(G1);
  });

  it('joins and leaves groups on control payloads on the user channel', async () => {
    const t = setup({});
    const b = await t.join(BOB);
    expect(t.subscribeGroup).not.toHaveBeenCalled();
    await t.bus.publish(BOB, encodeControl(encodeGroupControl({ join: G1 })));
    await settle();
    expect(t.subscribeGroup).toHaveBeenCalledWith(G1);
    await t.bus.publishGroup(G1, encodeGroupDelivery(t.frame(1)));
    await settle();
    expect(b.ws.sent).toEqual([t.frame(1)]);
    await t.bus.publish(BOB, encodeControl(encodeGroupControl({ leave: G1 })));
    await t.bus.publishGroup(G1, encodeGroupDelivery(t.frame(2)));
    await settle();
    expect(b.ws.sent).toEqual([t.frame(1)]);
    expect(t.unsubscribeGroup).toHaveBeenCalledWith(G1);
    // A control for a user with no connection here, or one that is not ours, changes nothing.
    await t.bus.publish(CAROL, encodeControl(encodeGroupControl({ join: G2 })));
    await t.bus.publish(BOB, encodeControl('not json'));
    await settle();
    expect(t.subscribeGroup).toHaveBeenCalledTimes(1);
  });

  it('does not subscribe for a user whose connections closed while its groups were read', async () => {
    const t = setup({ [ALICE]: [G1] });
    const loading = t.fanout.connected(ALICE);
    t.fanout.disconnected(ALICE);
    await loading;
    expect(t.subscribeGroup).not.toHaveBeenCalled();
  });
});
