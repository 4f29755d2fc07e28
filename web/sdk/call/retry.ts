/**
 * Call retries: how often and how soon a call tries again is a ReconnectPolicy (the same seam
 * the signaling connection uses), so an app or a test can choose; which failures are worth
 * another try is decided here, because only the call knows what an error code means for it.
 */
import type { ClientErrorCode } from '../errors.ts';
import { ExponentialBackoffPolicy, type ReconnectPolicy } from '../signal.ts';

export interface CallRetryPolicies {
  /** Joining a call (start or accept). Default: three attempts, 500 ms then 1 s apart. */
  join: ReconnectPolicy;
  /** Setting media up again after a failover or reconnect. Default: 300 ms doubling to 4 s, no limit. */
  rejoin: ReconnectPolicy;
}

/** Three attempts in all: the retries wait 500 ms, then 1000 ms. */
export const defaultJoinPolicy: ReconnectPolicy = {
  nextRetryDelayInMs: ({ attempt }) => (attempt >= 3 ? null : 500 * attempt),
};

export function defaultCallRetry(overrides: Partial<CallRetryPolicies> = {}): CallRetryPolicies {
  return {
    join: overrides.join ?? defaultJoinPolicy,
    // No jitter: these retries follow one event (the node failed), not a crowd returning at once.
    rejoin: overrides.rejoin ?? new ExponentialBackoffPolicy({ initialDelayMs: 300, multiplier: 2, maxDelayMs: 4000, jitter: 0 }),
  };
}

/** A busy or just-replaced media node: worth another try before giving up on the call. */
export function isTransientJoinError(code: ClientErrorCode | null): boolean {
  return code === 'MEDIA_UNAVAILABLE' || code === 'UNAVAILABLE' || code === 'TIMEOUT' || code === 'INTERNAL';
}

/** Errors after which a rejoin cannot succeed: the call itself is over or not ours. */
export function isFinalRejoinError(code: ClientErrorCode | null): boolean {
  return code === 'CALL_ENDED' || code === 'CALL_NOT_FOUND' || code === 'CALL_NOT_ALLOWED' || code === 'CALL_STATE';
}

/** Asks the policy about retry number `attempt` (1 = the first retry); null means give up. */
export function retryDelay(policy: ReconnectPolicy, attempt: number, since: number, code: ClientErrorCode | null): number | null {
  return policy.nextRetryDelayInMs({ attempt, elapsedMs: Date.now() - since, closeCode: null, closeReason: code ?? 'error' });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
