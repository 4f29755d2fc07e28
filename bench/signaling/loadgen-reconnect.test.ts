import { describe, expect, it } from 'vitest';
import { reconnect, reconnectStats } from './loadgen-reconnect.ts';

const spec = { urls: ['ws://a', 'ws://b'], initialDelayMs: 1, maxDelayMs: 4, jitter: 0, giveUpAfterMs: 200 };

describe('reconnect', () => {
  it('retries with backoff until a dial succeeds, counting attempts and the reconnect', async () => {
    const before = reconnectStats();
    let n = 0;
    const r = await reconnect(spec, async (url) => {
      if (++n < 3) throw new Error('ECONNREFUSED');
      return url;
    });
    expect(spec.urls).toContain(r);
    const after = reconnectStats();
    expect(after.reconnected - before.reconnected).toBe(1);
    expect(after.attempts - before.attempts).toBe(3);
    expect(after.failedAttempts - before.failedAttempts).toBe(2);
    expect(after.pending).toBe(before.pending);
  });

  it('gives up after the policy deadline', async () => {
    const before = reconnectStats();
    const r = await reconnect({ ...spec, giveUpAfterMs: 20 }, () => Promise.reject(new Error('down')));
    expect(r).toBeNull();
    expect(reconnectStats().gaveUp - before.gaveUp).toBe(1);
  });
});
