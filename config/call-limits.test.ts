import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.ts';

const base = { JWT_SECRET: 'x'.repeat(40), DATABASE_URL: 'postgres://u:pw@db/blockrtc', REDIS_URL: 'redis://r:6379' };

describe('call and media limit settings', () => {
  it('has the documented defaults', () => {
    const c = loadConfig('signaling', base);
    expect(c.limits.calls).toEqual({ limit: 10, windowMs: 60_000 });
    expect(c.calls).toMatchObject({ maxParticipants: 16, maxDevicesPerParticipant: 8, maxRingingPerCaller: 3, maxRingingPerCallee: 5 });
    expect(c.sfu.maxTransportsPerPeer).toBe(3);
    expect(c.turn.ttlSec).toBe(3600);
    expect(c.turn.denyOwnAddresses).toBe(true);
  });

  it('reads them from the environment and names every bad one', () => {
    const c = loadConfig('signaling', {
      ...base,
      RATE_LIMIT_CALLS: '5/30',
      CALL_MAX_DEVICES_PER_PARTICIPANT: '2',
      CALL_MAX_RINGING_PER_CALLER: '1',
      CALL_MAX_RINGING_PER_CALLEE: '9',
      SFU_MAX_TRANSPORTS_PER_PEER: '4',
      TURN_TTL_SECONDS: '900',
      TURN_DENY_OWN_ADDRESSES: 'false',
    });
    expect(c.limits.calls).toEqual({ limit: 5, windowMs: 30_000 });
    expect(c.calls).toMatchObject({ maxDevicesPerParticipant: 2, maxRingingPerCaller: 1, maxRingingPerCallee: 9 });
    expect(c.sfu.maxTransportsPerPeer).toBe(4);
    expect(c.turn).toMatchObject({ ttlSec: 900, denyOwnAddresses: false });

    let err: unknown;
    try {
      loadConfig('signaling', {
        ...base,
        RATE_LIMIT_CALLS: 'lots',
        CALL_MAX_RINGING_PER_CALLER: '0',
        CALL_MAX_RINGING_PER_CALLEE: '-1',
        CALL_MAX_DEVICES_PER_PARTICIPANT: '0',
        SFU_MAX_TRANSPORTS_PER_PEER: '1',
        TURN_TTL_SECONDS: String(6 * 3600 * 24),
        TURN_DENY_OWN_ADDRESSES: 'maybe',
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems.map((p) => p.split('=')[0]);
    expect(problems).toEqual([
      'RATE_LIMIT_CALLS',
      'SFU_MAX_TRANSPORTS_PER_PEER',
      'TURN_TTL_SECONDS',
      'TURN_DENY_OWN_ADDRESSES',
      'CALL_MAX_DEVICES_PER_PARTICIPANT',
      'CALL_MAX_RINGING_PER_CALLER',
      'CALL_MAX_RINGING_PER_CALLEE',
    ]);
  });
});
