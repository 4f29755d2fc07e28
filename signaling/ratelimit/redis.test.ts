import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { REDIS_URL, clearPrefix, testPrefix } from '../../testkit/redis.ts';
import { redisKeys, type RedisClient } from '../../infra/redis/connect.ts';
import { RedisRateLimiter } from './redis.ts';

const prefix = testPrefix('ratelimit');
const keys = redisKeys(prefix);
const clients: Redis[] = [];
afterAll(async () => {
  for (const c of clients) c.disconnect();
  await clearPrefix(prefix);
});
afterEach(() => {
  vi.restoreAllMocks();
});

const clock = (ms: number) => vi.spyOn(Date, 'now').mockReturnValue(ms);
type Reply = [number, number] | Error;
/** A client whose reservation script answers from a list (and records what it was asked). */
function fakeRedis(replies: Reply[]) {
  const calls: [string, number, number, number][] = [];
  const client = {
    defineCommand: vi.fn(),
    rateReserve: vi.fn(async (key: string, windowMs: number, want: number, limit: number) => {
      calls.push([key, windowMs, want, limit]);
      const r = replies.shift();
      if (!r) throw new Error('no more replies');
      if (r instanceof Error) throw r;
      return r;
    }),
  };
  return { client: client as unknown as RedisClient, calls, reserve: client.rateReserve };
}
const leases = (l: RedisRateLimiter) => (l as unknown as { leases: Map<string, unknown> }).leases;

describe('RedisRateLimiter leases', () => {
  it('asks for a tenth of the limit (at least one) and spends it locally', async () => {
    clock(1_000_000);
    const { client, calls } = fakeRedis([
      [10, 5_000],
      [1, 1_000],
    ]);
    const l = new RedisRateLimiter(client, keys);
    for (let i = 0; i < 10; i++) expect(await l.hit('msg', 'a', { limit: 100, windowMs: 5_000 })).toEqual({ ok: true, retryAfterMs: 0 });
    expect(calls).toEqual([[keys.rate('msg', 'a'), 5_000, 10, 100]]);
    expect(await l.hit('msg', 'b', { limit: 19, windowMs: 1_000 })).toEqual({ ok: true, retryAfterMs: 0 });
    expect(calls[1]).toEqual([keys.rate('msg', 'b'), 1_000, 1, 19]);
  });

  it('asks again when a lease is spent, and refuses locally with the time left once Redis grants nothing', async () => {
    clock(1_000_000);
    const { client, calls } = fakeRedis([
      [2, 5_000],
      [1, 4_000],
      [0, 3_000],
    ]);
    const l = new RedisRateLimiter(client, keys);
    const rule = { limit: 20, windowMs: 5_000 };
    const oks = [];
    for (let i = 0; i < 3; i++) oks.push((await l.hit('msg', 'a', rule)).ok);
    expect(oks).toEqual([true, true, true]);
    expect(calls).toHaveLength(2);
    expect(await l.hit('msg', 'a', rule)).toEqual({ ok: false, retryAfterMs: 3_000 });
    clock(1_002_999);
    expect(await l.hit('msg', 'a', rule)).toEqual({ ok: false, retryAfterMs: 1 });
    expect(calls).toHaveLength(3);
  });

  it('asks again at the moment a lease expires', async () => {
    clock(1_000_000);
    const { client, calls } = fakeRedis([
      [0, 2_000],
      [5, 5_000],
    ]);
    const l = new RedisRateLimiter(client, keys);
    const rule = { limit: 50, windowMs: 5_000 };
    expect((await l.hit('msg', 'a', rule)).ok).toBe(false);
    clock(1_001_999);
    expect((await l.hit('msg', 'a', rule)).ok).toBe(false);
    expect(calls).toHaveLength(1);
    clock(1_002_000);
    expect(await l.hit('msg', 'a', rule)).toEqual({ ok: true, retryAfterMs: 0 });
    expect(calls).toHaveLength(2);
  });

  it('takes the whole window when Redis reports no expiry', async () => {
    clock(1_000_000);
    const { client } = fakeRedis([
      [0, -1],
      [0, 0],
    ]);
    const l = new RedisRateLimiter(client, keys);
    expect(await l.hit('msg', 'a', { limit: 5, windowMs: 7_000 })).toEqual({ ok: false, retryAfterMs: 7_000 });
    expect(await l.hit('msg', 'b', { limit: 5, windowMs: 6_000 })).toEqual({ ok: false, retryAfterMs: 6_000 });
  });

  it('lets concurrent hits wait for one reservation', async () => {
    clock(1_000_000);
    const { client, calls } = fakeRedis([
      [3, 5_000],
      [0, 5_000],
    ]);
    const l = new RedisRateLimiter(client, keys);
    const rule = { limit: 30, windowMs: 5_000 };
    const hits = await Promise.all(Array.from({ length: 5 }, () => l.hit('msg', 'a', rule)));
    expect(hits.map((h) => h.ok)).toEqual([true, true, true, false, false]);
    expect(calls).toHaveLength(2);
  });

  it('forgets a failed reservation so the next hit asks again', async () => {
    clock(1_000_000);
    const { client, calls } = fakeRedis([new Error('redis down'), [4, 5_000]]);
    const l = new RedisRateLimiter(client, keys);
    const rule = { limit: 40, windowMs: 5_000 };
    await expect(l.hit('msg', 'a', rule)).rejects.toThrow('redis down');
    expect(leases(l).size).toBe(0);
    expect((await l.hit('msg', 'a', rule)).ok).toBe(true);
    expect(calls).toHaveLength(2);
  });

  it('drops expired leases at most once a minute, never one being reserved', async () => {
    clock(100_000);
    let release: (v: [number, number]) => void = () => undefined;
    const { client } = fakeRedis([
      [1, 1_000],
      [1, 1],
      [1, 10_000],
      [1, 1_000],
      [1, 1_000],
      [1, 1_000],
    ]);
    const l = new RedisRateLimiter(client, keys);
    await l.hit('t', 'a', { limit: 10, windowMs: 1_000 });
    clock(160_000);
    await l.hit('t', 'b', { limit: 10, windowMs: 1 });
    await l.hit('t', 'live', { limit: 10, windowMs: 10_000 });
    expect(leases(l).size).toBe(3);
    clock(160_001);
    // a ended long ago, b at this moment: both go; the live lease stays.
    await l.hit('t', 'c', { limit: 10, windowMs: 1_000 });
    expect([...leases(l).keys()]).toEqual([keys.rate('t', 'live'), keys.rate('t', 'c')]);
    clock(200_000);
    await l.hit('t', 'd', { limit: 10, windowMs: 1_000 });
    expect(leases(l).size).toBe(3);
    // A reservation in flight survives a prune.
    (client as unknown as { rateReserve: ReturnType<typeof vi.fn> }).rateReserve.mockImplementationOnce(
      () => new Promise<[number, number]>((r) => (release = r)),
    );
    clock(300_000);
    const pending = l.hit('t', 'e', { limit: 10, windowMs: 1_000 });
    clock(400_000);
    await l.hit('t', 'f', { limit: 10, windowMs: 1_000 });
    expect([...leases(l).keys()]).toEqual([keys.rate('t', 'e'), keys.rate('t', 'f')]);
    release([1, 1_000]);
    expect((await pending).ok).toBe(true);
  });
});

describe('RedisRateLimiter script', () => {
  const redis = () => {
    const r = new Redis(REDIS_URL);
    clients.push(r);
    return r;
  };

  it('defines its script once per client', () => {
    const r = redis();
    const define = vi.spyOn(r, 'defineCommand');
    new RedisRateLimiter(r, keys);
    new RedisRateLimiter(r, keys);
    expect(define).toHaveBeenCalledTimes(1);
  });

  it('reserves up to the limit, sets the window once, and grants nothing past it', async () => {
    const r = redis();
    const l = new RedisRateLimiter(r, keys);
    const scripted = r as unknown as { rateReserve(k: string, w: number, want: number, limit: number): Promise<[number, number]> };
    const key = keys.rate('script', 'x');
    const [g1, t1] = await scripted.rateReserve(key, 5_000, 4, 10);
    expect(g1).toBe(4);
    expect(t1).toBeGreaterThan(4_000);
    expect(await scripted.rateReserve(key, 60_000, 4, 10)).toEqual([4, expect.any(Number)]);
    expect(await r.pttl(key)).toBeLessThanOrEqual(5_000);
    expect((await scripted.rateReserve(key, 5_000, 4, 10))[0]).toBe(2);
    expect((await scripted.rateReserve(key, 5_000, 4, 10))[0]).toBe(0);
    expect(await r.get(key)).toBe('10');
    const rule = { limit: 2, windowMs: 5_000 };
    expect((await l.hit('script', 'y', rule)).ok).toBe(true);
    expect((await l.hit('script', 'y', rule)).ok).toBe(true);
    const refused = await l.hit('script', 'y', rule);
    expect(refused.ok).toBe(false);
    expect(refused.retryAfterMs).toBeGreaterThan(4_000);
  });
});
