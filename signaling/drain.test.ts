import { describe, expect, it } from 'vitest';
import { MemoryBus } from '../infra/bus/memory.ts';
import { captureLog, fakeConnection } from '../testkit/fakes.ts';
import { drainConnections } from './drain.ts';
import { createMetrics } from './metrics.ts';
import { Connections } from './connections.ts';

const users = Array.from({ length: 200 }, (_, i) => `0x${(i + 1).toString(16).padStart(40, '0')}`);

async function setup(n: number) {
  const cap = captureLog();
  const connections = new Connections(new MemoryBus(), createMetrics(), cap.log, 1 << 20);
  const conns = Array.from({ length: n }, (_, i) => fakeConnection(users[i % users.length]!));
  for (const c of conns) await connections.add(c.conn);
  return { cap, connections, conns };
}

describe('drainConnections', () => {
  it('tells every connection, waits for the writes, then closes every one with 1012', async () => {
    const t = await setup(3);
    let writesFinished = 0;
    let sentAtStart: number[] = [];
    let calls = 0;
    // The drain asks again until a round adds no writes; the first round has one in flight.
    const writesDone = async () => {
      if (calls++ > 0) return;
      sentAtStart = t.conns.map((c) => c.ws.sent.length);
      await new Promise((r) => setTimeout(r, 50));
      // An answer written while the writes finish still reaches the client.
      for (const c of t.conns) c.conn.ok('pending', { id: '1' });
      writesFinished = Date.now();
    };
    await drainConnections({ connections: t.connections, writesDone, deadline: Date.now() + 5000, reason: 'node shutting down', log: t.cap.log });

    expect(sentAtStart).toEqual([1, 1, 1]);
    for (const c of t.conns) {
      expect(c.ws.frames()).toEqual([
        { ev: 'session.draining', data: { reason: 'node shutting down', reconnectInMs: 0 } },
        { re: 'pending', ok: true, data: { id: '1' } },
      ]);
      expect(c.ws.closes).toEqual([expect.objectContaining({ code: 1012, reason: 'draining' })]);
      expect(c.ws.closes[0]!.at).toBeGreaterThanOrEqual(writesFinished);
      expect(c.conn.closed).toBe(true);
    }
    expect(t.cap.at('info')).toEqual([expect.objectContaining({ msg: 'draining', connections: 3 })]);
  });

  it('does not wait for writes past the deadline', async () => {
    const t = await setup(2);
    const start = Date.now();
    await drainConnections({ connections: t.connections, writesDone: () => new Promise(() => undefined), deadline: start + 150, reason: 'r', log: t.cap.log });
    const took = Date.now() - start;
    expect(took).toBeGreaterThanOrEqual(140);
    expect(took).toBeLessThan(1000);
    for (const c of t.conns) expect(c.ws.closes.map((x) => x.code)).toEqual([1012]);
  });

  it('closes at once when the deadline has already passed', async () => {
    const t = await setup(2);
    const start = Date.now();
    await drainConnections({ connections: t.connections, writesDone: () => new Promise(() => undefined), deadline: start - 10, reason: 'r', log: t.cap.log });
    expect(Date.now() - start).toBeLessThan(500);
    for (const c of t.conns) expect(c.ws.closes).toHaveLength(1);
  });

  it('spreads the closes of many connections over time, within the deadline', async () => {
    const t = await setup(150);
    const start = Date.now();
    // Half the remaining 1200 ms (600) over 150 connections: a 400 ms pause after each 100.
    await drainConnections({ connections: t.connections, writesDone: async () => undefined, deadline: start + 1200, reason: 'r', log: t.cap.log });
    const at = t.conns.map((c) => c.ws.closes[0]!.at);
    expect(at.every((x) => x > 0)).toBe(true);
    expect(at[99]! - at[0]!).toBeLessThan(100);
    expect(at[100]! - at[99]!).toBeGreaterThanOrEqual(300);
    expect(Date.now() - start).toBeLessThan(1200);
  });

  it('leaves connections that closed by themselves alone', async () => {
    const t = await setup(2);
    t.conns[0]!.conn.close(1000, 'bye');
    await drainConnections({ connections: t.connections, writesDone: async () => undefined, deadline: Date.now() + 1000, reason: 'r', log: t.cap.log });
    expect(t.conns[0]!.ws.sent).toEqual([]);
    expect(t.conns[0]!.ws.closes.map((c) => c.code)).toEqual([1000]);
    expect(t.conns[1]!.ws.closes.map((c) => c.code)).toEqual([1012]);
  });

  it('finishes at once with no connections', async () => {
    const t = await setup(0);
    const start = Date.now();
    await drainConnections({ connections: t.connections, writesDone: async () => undefined, deadline: start + 5000, reason: 'r', log: t.cap.log });
    expect(Date.now() - start).toBeLessThan(500);
  });
});
