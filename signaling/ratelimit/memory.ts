import type { RateLimit } from '../../config/config.ts';
import type { LimitResult, RateLimiter } from './limiter.ts';

/** One process: fixed windows in a map, pruned once a minute. */
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
