import { afterEach, describe, expect, it, vi } from 'vitest';
import { MemoryRateLimiter } from './memory.ts';

const size = (l: MemoryRateLimiter) => (l as unknown as { windows: Map<string, unknown> }).windows.size;
const clock = (ms: number) => vi.spyOn(Date, 'now').mockReturnValue(ms);

afterEach(() => {
  vi.restoreAllMocks();
});

describe('MemoryRateLimiter', () => {
  it('admits the limit per fixed window and says exactly when to retry', async () => {
    const l = new MemoryRateLimiter();
    const rule = { limit: 2, windowMs: 1_000 };
    clock(100_000);
    expect(await l.hit('msg', 'a', rule)).toEqual({ ok: true, retryAfterMs: 0 });
    clock(100_400);
    expect(await l.hit('msg', 'a', rule)).toEqual({ ok: true, retryAfterMs: 0 });
    expect(await l.hit('msg', 'a', rule)).toEqual({ ok: false, retryAfterMs: 600 });
    clock(100_999);
    expect(await l.hit('msg', 'a', rule)).toEqual({ ok: false, retryAfterMs: 1 });
    // The window ends at its reset time exactly.
    clock(101_000);
    expect(await l.hit('msg', 'a', rule)).toEqual({ ok: true, retryAfterMs: 0 });
  });

  it('counts each limit name and id apart', async () => {
    const l = new MemoryRateLimiter();
    const rule = { limit: 1, windowMs: 1_000 };
    clock(100_000);
    expect((await l.hit('msg', 'a', rule)).ok).toBe(true);
    expect((await l.hit('msg', 'b', rule)).ok).toBe(true);
    expect((await l.hit('call', 'a', rule)).ok).toBe(true);
    expect((await l.hit('msg', 'a', rule)).ok).toBe(false);
  });

  it('drops ended windows at most once a minute', async () => {
    const l = new MemoryRateLimiter();
    clock(100_000);
    await l.hit('t', 'a', { limit: 5, windowMs: 1_000 });
    clock(160_000);
    // Exactly a minute after the last prune: not yet.
    await l.hit('t', 'b', { limit: 5, windowMs: 1 });
    await l.hit('t', 'live', { limit: 5, windowMs: 10_000 });
    expect(size(l)).toBe(3);
    clock(160_001);
    // a ended long ago, b ends at this moment: both go; the live window stays.
    await l.hit('t', 'c', { limit: 5, windowMs: 1_000 });
    expect(size(l)).toBe(2);
    // Its count survived the prune.
    expect((await l.hit('t', 'live', { limit: 1, windowMs: 10_000 })).ok).toBe(false);
    clock(200_000);
    await l.hit('t', 'd', { limit: 5, windowMs: 1_000 });
    expect(size(l)).toBe(3);
  });
});
