import type { RateLimit } from '../../config/config.ts';
import type { RedisClient, RedisKeys } from '../redis/connect.ts';

export interface LimitResult {
  ok: boolean;
  retryAfterMs: number;
}

/** Fixed-window counters; Redis-backed so a limit holds across every node. */
export interface RateLimiter {
  hit(name: string, id: string, rule: RateLimit): Promise<LimitResult>;
}

export class MemoryRateLimiter implements RateLimiter {
  private readonly windows = new Map<string, { count: number; resetAt: number }>();
  private lastPrune = 0;

  async hit(name: string, id: string, rule: RateLimit): Promise<LimitResult> {
    const now = Date.now();
    if (now - this.lastPrune > 60_000) this.prune(now);
    const key = `${name}:${id}`;
    let w = this.windows.get(key);
    if (!w || w.resetAt <= now) this.windows.set(key, (w = { count: 0, resetAt: now + rule.windowMs }));
    w.count++;
    return { ok: w.count <= rule.limit, retryAfterMs: w.count <= rule.limit ? 0 : w.resetAt - now };
  }

  private prune(now: number): void {
    this.lastPrune = now;
    for (const [k, w] of this.windows) if (w.resetAt <= now) this.windows.delete(k);
  }
}

const HIT = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {n, redis.call('PTTL', KEYS[1])}`;

type Scripted = RedisClient & { rateHit(key: string, windowMs: number): Promise<[number, number]> };

export class RedisRateLimiter implements RateLimiter {
  private readonly r: Scripted;
  constructor(
    redis: RedisClient,
    private readonly keys: RedisKeys,
  ) {
    if (!('rateHit' in redis)) redis.defineCommand('rateHit', { numberOfKeys: 1, lua: HIT });
    this.r = redis as Scripted;
  }

  async hit(name: string, id: string, rule: RateLimit): Promise<LimitResult> {
    const [n, ttl] = await this.r.rateHit(this.keys.rate(name, id), rule.windowMs);
    return { ok: n <= rule.limit, retryAfterMs: n <= rule.limit ? 0 : Math.max(ttl, 0) };
  }
}
