import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TurnRenewal, credentialExpiry } from './turn-renewal.ts';

const server = (expirySec: number) => ({ urls: ['turn:t.example:3478'], username: `${expirySec}:0xabc`, credential: 'x' });

describe('TURN credential renewal', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('reads the earliest expiry from `<expiry>:<user>` usernames and ignores others', () => {
    expect(credentialExpiry([server(2000), server(1000), { urls: 'stun:s.example' }])).toBe(1_000_000);
    expect(credentialExpiry([{ urls: 'stun:s.example' }])).toBeNull();
  });

  it('renews at 80 % of the remaining lifetime, applies the new credentials and re-arms', async () => {
    const now = () => Date.now();
    const t0 = Math.floor(Date.now() / 1000);
    const fresh = [server(t0 + 200)];
    const renew = vi.fn(async () => fresh);
    const applied: RTCIceServer[][] = [];
    const r = new TurnRenewal(renew, async (s) => void applied.push(s), now);
    r.schedule([server(t0 + 100)]);
    await vi.advanceTimersByTimeAsync(79_000);
    expect(renew).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(2_000);
    expect(renew).toHaveBeenCalledTimes(1);
    expect(applied).toEqual([fresh]);
    // Re-armed for the new credentials.
    await vi.advanceTimersByTimeAsync(200_000);
    expect(renew.mock.calls.length).toBeGreaterThanOrEqual(2);
    r.stop();
  });

  it('retries after a failed renewal and stops for good on stop()', async () => {
    const t0 = Math.floor(Date.now() / 1000);
    const renew = vi.fn(async (): Promise<RTCIceServer[]> => {
      throw new Error('NOT_IN_CALL');
    });
    const r = new TurnRenewal(renew, async () => undefined);
    r.schedule([server(t0 + 10)]);
    await vi.advanceTimersByTimeAsync(8_001);
    expect(renew).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(30_001);
    expect(renew).toHaveBeenCalledTimes(2);
    r.stop();
    await vi.advanceTimersByTimeAsync(120_000);
    expect(renew).toHaveBeenCalledTimes(2);
  });

  it('arms nothing for servers without an expiry', async () => {
    const renew = vi.fn(async () => []);
    new TurnRenewal(renew, async () => undefined).schedule([{ urls: 'stun:s.example' }]);
    await vi.advanceTimersByTimeAsync(10 * 60_000);
    expect(renew).not.toHaveBeenCalled();
  });
});
