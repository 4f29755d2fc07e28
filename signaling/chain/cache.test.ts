import { describe, expect, it } from 'vitest';
import { TtlCache } from './cache.ts';

describe('TtlCache', () => {
  const setup = () => {
    let now = 0;
    let loads = 0;
    const cache = new TtlCache<number>(1000, 2, () => now);
    const load = (v: number) => async () => (loads++, v);
    return { cache, load, tick: (ms: number) => (now += ms), loads: () => loads };
  };

  it('reuses a value within the TTL and loads again after it', async () => {
    const { cache, load, tick, loads } = setup();
    expect(await cache.fresh('a', load(1))).toBe(1);
    tick(999);
    expect(await cache.fresh('a', load(2))).toBe(1);
    tick(1);
    expect(await cache.fresh('a', load(3))).toBe(3);
    expect(loads()).toBe(2);
  });

  it('shares one load between concurrent misses, and caches no failure', async () => {
    const { cache, loads } = setup();
    let calls = 0;
    const slow = () => new Promise<number>((r) => setTimeout(() => r(++calls), 10));
    expect(await Promise.all([cache.fresh('k', slow), cache.fresh('k', slow)])).toEqual([1, 1]);
    await expect(cache.fresh('x', () => Promise.reject(new Error('down')))).rejects.toThrow('down');
    expect(await cache.fresh('x', async () => 7)).toBe(7);
    expect(loads()).toBe(0);
  });

  it('serves a stale value at once and refreshes it in the background, keeping it if that fails', async () => {
    const { cache, tick } = setup();
    await cache.fresh('n', async () => 1);
    tick(5000);
    const errors: unknown[] = [];
    expect(await cache.stale('n', () => Promise.reject(new Error('down')), (e) => errors.push(e))).toBe(1);
    await new Promise((r) => setTimeout(r, 0));
    expect(errors).toHaveLength(1);
    expect(await cache.stale('n', async () => 2, (e) => errors.push(e))).toBe(1);
    await new Promise((r) => setTimeout(r, 0));
    expect(await cache.stale('n', async () => 3, (e) => errors.push(e))).toBe(2);
    // Nothing cached: waits for the load (and its failure).
    await expect(cache.stale('m', () => Promise.reject(new Error('no')), () => undefined)).rejects.toThrow('no');
  });

  it('drops the oldest entry past its size', async () => {
    const { cache, loads, load } = setup();
    await cache.fresh('a', load(1));
    await cache.fresh('b', load(2));
    await cache.fresh('c', load(3));
    expect(cache.size).toBe(2);
    await cache.fresh('b', load(9));
    expect(loads()).toBe(3);
    expect(await cache.fresh('a', load(4))).toBe(4);
  });
});
