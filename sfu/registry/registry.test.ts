import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { REDIS_URL, clearPrefix, testPrefix } from '../../testkit/redis.ts';
import { MemorySfuRegistry } from './memory.ts';
import { RedisSfuRegistry } from './redis.ts';
import type { SfuRegistry, WorkerLoad } from './registry.ts';

const prefix = testPrefix('registry');
const redis = new Redis(REDIS_URL);
afterAll(async () => {
  redis.disconnect();
  await clearPrefix(prefix);
});

const workers = (...loads: [number, number][]): WorkerLoad[] => loads.map(([consumers, rooms], index) => ({ index, alive: true, consumers, producers: 0, rooms, cpu: 0 }));
let n = 0;

describe.each([
  ['memory', () => new MemorySfuRegistry(1000, 500)],
  ['redis', () => new RedisSfuRegistry(redis, `${prefix}${++n}:`, 1000, 500)],
] as const)('%s SFU registry', (_name, make: () => SfuRegistry) => {
  it('places a call once even when asked concurrently', async () => {
    const r = make();
    const now = Date.now();
    await r.heartbeat('a', workers([0, 0], [0, 0]), false, now);
    const results = await Promise.all(Array.from({ length: 20 }, () => r.place('call-1', now)));
    expect(new Set(results.map((p) => `${p?.node}/${p?.worker}`)).size).toBe(1);
    expect(await r.lookup('call-1')).toEqual(results[0]);
  });

  it('picks the least-loaded worker with room and counts placements made since the last heartbeat', async () => {
    const r = make();
    const now = Date.now();
    await r.heartbeat('a', workers([300, 3], [500, 1]), false, now);
    await r.heartbeat('b', workers([30, 1], [20, 0]), false, now);
    expect(await r.place('c1', now)).toEqual({ node: 'b', worker: 1 });
    expect(await r.place('c2', now)).toEqual({ node: 'b', worker: 1 }); // 20 + 4 < 30 + 4
    const spread = await Promise.all(['c3', 'c4', 'c5', 'c6', 'c7', 'c8'].map((c) => r.place(c, now)));
    expect(spread.some((p) => p?.node === 'b' && p.worker === 0)).toBe(true);
    expect(spread.every((p) => !(p?.node === 'a' && p.worker === 1))).toBe(true); // full: 500 consumers
  });

  it('skips stale and draining nodes, and moves calls off a dead one', async () => {
    const r = make();
    const now = Date.now();
    await r.heartbeat('old', workers([0, 0]), false, now - 5000);
    await r.heartbeat('leaving', workers([0, 0]), true, now);
    await r.heartbeat('live', workers([50, 2]), false, now);
    expect((await r.place('x1', now))?.node).toBe('live');
    expect(await r.staleNodes(now)).toEqual(['old']);
    await r.heartbeat('old', workers([0, 0]), false, now);
    const onOld = await r.place('x2', now);
    expect(onOld?.node).toBe('old');
    expect(await r.callsOn('old')).toEqual(['x2']);
    await r.heartbeat('live', workers([50, 2]), false, now + 3000);
    const moved = await r.replace('x2', 'old', now + 3000);
    expect(moved?.node).toBe('live');
    // Replacing again from the old node does nothing: the call already moved.
    expect(await r.replace('x2', 'old', now + 3000)).toEqual(moved);
    await r.release('x2');
    expect(await r.lookup('x2')).toBeNull();
  });

  it('answers null when no node has room', async () => {
    const r = make();
    const now = Date.now();
    await r.heartbeat('full', workers([500, 10]), false, now);
    expect(await r.place('nope', now)).toBeNull();
  });
});
