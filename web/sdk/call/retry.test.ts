import { describe, expect, it } from 'vitest';
import type { ReconnectContext, ReconnectPolicy } from '../signal.ts';
import { defaultCallRetry, defaultJoinPolicy, isFinalRejoinError, isTransientJoinError, retryDelay } from './retry.ts';

const ctx = (attempt: number): ReconnectContext => ({ attempt, elapsedMs: 0, closeCode: null, closeReason: 'MEDIA_UNAVAILABLE' });
const schedule = (p: ReconnectPolicy, n: number) => Array.from({ length: n }, (_, i) => p.nextRetryDelayInMs(ctx(i + 1)));

describe('default call retry policies', () => {
  it('join: three attempts in all, 500 ms then 1 s apart', () => {
    expect(schedule(defaultJoinPolicy, 4)).toEqual([500, 1000, null, null]);
    expect(schedule(defaultCallRetry().join, 3)).toEqual([500, 1000, null]);
  });

  it('rejoin: 300 ms doubling up to 4 s, without jitter and without giving up', () => {
    expect(schedule(defaultCallRetry().rejoin, 8)).toEqual([300, 600, 1200, 2400, 4000, 4000, 4000, 4000]);
    expect(defaultCallRetry().rejoin.nextRetryDelayInMs(ctx(1000))).toBe(4000);
  });

  it('takes either policy from the overrides', () => {
    const never: ReconnectPolicy = { nextRetryDelayInMs: () => null };
    const r = defaultCallRetry({ rejoin: never });
    expect(r.rejoin).toBe(never);
    expect(r.join).toBe(defaultJoinPolicy);
  });
});

describe('retryDelay', () => {
  it('passes the attempt, the time since the first failure and the error code to the policy', () => {
    const seen: ReconnectContext[] = [];
    const policy: ReconnectPolicy = {
      nextRetryDelayInMs: (c) => {
        seen.push(c);
        return 7;
      },
    };
    expect(retryDelay(policy, 2, Date.now() - 1000, 'TIMEOUT')).toBe(7);
    expect(retryDelay(policy, 3, Date.now(), null)).toBe(7);
    expect(seen[0]).toMatchObject({ attempt: 2, closeCode: null, closeReason: 'TIMEOUT' });
    expect(seen[0]!.elapsedMs).toBeGreaterThanOrEqual(1000);
    expect(seen[1]!.closeReason).toBe('error');
  });
});

describe('which errors are retried', () => {
  it('retries a join only for a busy or replaced media node', () => {
    for (const code of ['MEDIA_UNAVAILABLE', 'UNAVAILABLE', 'TIMEOUT', 'INTERNAL'] as const) expect(isTransientJoinError(code)).toBe(true);
    for (const code of ['CALL_NOT_ALLOWED', 'CALL_ENDED', 'DISCONNECTED', null] as const) expect(isTransientJoinError(code)).toBe(false);
  });

  it('stops rejoining when the call is over or not ours', () => {
    for (const code of ['CALL_ENDED', 'CALL_NOT_FOUND', 'CALL_NOT_ALLOWED', 'CALL_STATE'] as const) expect(isFinalRejoinError(code)).toBe(true);
    for (const code of ['MEDIA_UNAVAILABLE', 'TIMEOUT', null] as const) expect(isFinalRejoinError(code)).toBe(false);
  });
});
