import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { REDIS_URL, clearPrefix, testPrefix } from '../../../testkit/redis.ts';
import { redisKeys } from '../../../infra/redis/connect.ts';
import { RedisNonceStore } from './redis.ts';

const prefix = testPrefix('nonces');
const keys = redisKeys(prefix);
const redis = new Redis(REDIS_URL);
afterAll(async () => {
  redis.disconnect();
  await clearPrefix(prefix);
});

describe('RedisNonceStore', () => {
  it('keeps an issued nonce under its key for its time to live, and consumes it once', async () => {
    const s = new RedisNonceStore(redis, keys);
    await s.issue('abcdefgh-1', 30);
    const ttl = await redis.ttl(keys.nonce('abcdefgh-1'));
    expect(ttl).toBeGreaterThan(25);
    expect(ttl).toBeLessThanOrEqual(30);
    expect(await s.consume('abcdefgh-1')).toBe(true);
    expect(await s.consume('abcdefgh-1')).toBe(false);
    expect(await redis.exists(keys.nonce('abcdefgh-1'))).toBe(0);
  });
});
