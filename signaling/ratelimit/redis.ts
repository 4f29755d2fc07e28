import type { RateLimit } from '../../config/config.ts';
import type { RedisClient, RedisKeys } from '../../infra/redis/connect.ts';
import type { LimitResult, RateLimiter } from './limiter.ts';

/**
 * Reserves up to ARGV[2] hits of the window for one node, never past the limit ARGV[3].
 * Returns {granted, pttl}; granted 0 means the limit is reached for the rest of the window.
 */
const RESERVE = `
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
local grant = math.min(tonumber(ARGV[2]), tonumber(ARGV[3]) - n)
if grant <= 0 then return {0, redis.call('PTTL', KEYS[1])} end
if redis.call('INCRBY', KEYS[1], grant) == grant then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {grant, redis.call('PTTL', KEYS[1])}`;

type Scripted = RedisClient & { rateReserve(key: string, windowMs: number, want: number, limit: number): Promise<[number, number]> };

/** Hits a node may take from Redis at once: a tenth of the limit (1 for small limits). */
const LEASE_FRACTION = 10;

interface Lease {
  remaining: number;
  expiresAt: number;
  /** The window is used up everywhere: refuse locally until it ends. */
  exhausted: boolean;
  pending: Promise<void> | null;
}

/**
 * Redis-backed fixed windows without a Redis round trip per hit: a node reserves a slice
 * of the window's budget (atomically, never past the limit) and spends it locally. Exact
 * in the safe direction: the hits admitted across all nodes never exceed the limit; a
 * slice reserved by one node and left unused can only make others refuse a little early.
 */
export class RedisRateLimiter implements RateLimiter {
  private readonly r: Scripted;
  private readonly leases = new Map<string, Lease>();
  private lastPrune = 0;

  constructor(
    redis: RedisClient,
    private readonly keys: RedisKeys,
  ) {
    if (!('rateReserve' in redis)) redis.defineCommand('rateReserve', { numberOfKeys: 1, lua: RESERVE });
    this.r = redis as Scripted;
  }

  async hit(name: string, id: string, rule: RateLimit): Promise<LimitResult> {
    const key = this.keys.rate(name, id);
    for (;;) {
      const now = Date.now();
      if (now - this.lastPrune > 60_000) this.prune(now);
      const lease = this.leases.get(key);
      if (lease && lease.expiresAt > now) {
        if (lease.remaining > 0) {
          lease.remaining--;
          return { ok: true, retryAfterMs: 0 };
        }
        if (lease.exhausted) return { ok: false, retryAfterMs: lease.expiresAt - now };
      }
      if (lease?.pending) {
        await lease.pending;
        continue;
      }
      const next: Lease = { remaining: 0, expiresAt: now, exhausted: false, pending: null };
      next.pending = this.reserve(key, rule, next).finally(() => (next.pending = null));
      this.leases.set(key, next);
      await next.pending;
    }
  }

  private async reserve(key: string, rule: RateLimit, lease: Lease): Promise<void> {
    const want = Math.max(1, Math.floor(rule.limit / LEASE_FRACTION));
    try {
      const [granted, pttl] = await this.r.rateReserve(key, rule.windowMs, want, rule.limit);
      const ttl = pttl > 0 ? pttl : rule.windowMs;
      lease.expiresAt = Date.now() + ttl;
      lease.remaining = granted;
      lease.exhausted = granted === 0;
    } catch (err) {
      // Nothing reserved: the next hit asks Redis again.
      if (this.leases.get(key) === lease) this.leases.delete(key);
      throw err;
    }
  }

  private prune(now: number): void {
    this.lastPrune = now;
    for (const [k, l] of this.leases) if (l.expiresAt <= now && !l.pending) this.leases.delete(k);
  }
}
