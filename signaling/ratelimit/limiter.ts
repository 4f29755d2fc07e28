import type { RateLimit } from '../../config/config.ts';

export interface LimitResult {
  ok: boolean;
  retryAfterMs: number;
}

/** Fixed-window counters; Redis-backed so a limit holds across every node. */
export interface RateLimiter {
  hit(name: string, id: string, rule: RateLimit): Promise<LimitResult>;
}
