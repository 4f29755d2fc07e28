/**
 * Reconnects of a load generator's clients after the server dropped them, with the web
 * SDK's own backoff policy (so a storm has the shape real clients give it), and the
 * figures of a storm: how many came back, when, and how many attempts it took.
 */
import { ExponentialBackoffPolicy } from '../../web/sdk/signal.ts';
import type { ReconnectSpec, ReconnectStats } from './ipc.ts';
import { bump, nowMs } from './stats.ts';

const stats: ReconnectStats = { dropped: 0, reconnected: 0, gaveUp: 0, pending: 0, attempts: 0, failedAttempts: 0, errors: {}, perSecond: {}, firstDropAt: 0, lastReconnectAt: 0 };

/** Set while the process closes its own clients: those closes are not drops. */
let closingOnPurpose = false;
export function closingAll(on: boolean): void {
  closingOnPurpose = on;
}

export function reconnectStats(): ReconnectStats {
  return { ...stats, errors: { ...stats.errors }, perSecond: { ...stats.perSecond } };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Dials until one attempt succeeds or the policy gives up (null). The first delay is the
 * policy's too: a real client does not return the instant its socket drops.
 */
export async function reconnect<T>(spec: ReconnectSpec, dial: (url: string) => Promise<T>): Promise<T | null> {
  if (closingOnPurpose) return null;
  const policy = new ExponentialBackoffPolicy({ initialDelayMs: spec.initialDelayMs, maxDelayMs: spec.maxDelayMs, jitter: spec.jitter, maxElapsedMs: spec.giveUpAfterMs });
  const lostAt = Date.now();
  stats.dropped++;
  stats.pending++;
  if (stats.firstDropAt === 0) stats.firstDropAt = nowMs();
  for (let attempt = 1; ; attempt++) {
    const delay = policy.nextRetryDelayInMs({ attempt, elapsedMs: Date.now() - lostAt, closeCode: 1006, closeReason: '' });
    if (delay === null || closingOnPurpose) {
      stats.pending--;
      stats.gaveUp++;
      return null;
    }
    await sleep(delay);
    const url = spec.urls[Math.floor(Math.random() * spec.urls.length)]!;
    stats.attempts++;
    try {
      const r = await dial(url);
      stats.pending--;
      stats.reconnected++;
      const at = nowMs();
      stats.lastReconnectAt = at;
      const sec = String(Math.floor(at / 1000));
      stats.perSecond[sec] = (stats.perSecond[sec] ?? 0) + 1;
      return r;
    } catch (err) {
      stats.failedAttempts++;
      bump(stats.errors, err instanceof Error ? err.message : String(err));
    }
  }
}
