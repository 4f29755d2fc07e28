import type { RateLimit } from '../../config/config.ts';
import { BlockRtcError } from '../../protocol/errors.ts';
import type { Metrics } from '../metrics.ts';
import type { RateLimiter } from './limiter.ts';

/**
 * Counts one hit against a limit; past it, counts the refusal in the metrics and throws
 * RATE_LIMITED with the time until the window ends.
 */
export async function enforceLimit(
  limiter: RateLimiter,
  metrics: Metrics,
  limit: { name: string; metric: string; id: string; rule: RateLimit; message?: string },
): Promise<void> {
  const r = await limiter.hit(limit.name, limit.id, limit.rule);
  if (r.ok) return;
  metrics.rateLimited.inc({ limit: limit.metric });
  throw new BlockRtcError('RATE_LIMITED', limit.message, { retryAfterMs: r.retryAfterMs });
}
