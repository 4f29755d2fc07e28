import type { RedisClient, RedisKeys } from '../../../infra/redis/connect.ts';
import type { NonceStore } from './store.ts';

/** One key per nonce with a TTL; consuming is a DEL, atomic across nodes. */
export class RedisNonceStore implements NonceStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
  ) {}
  async issue(nonce: string, ttlSec: number): Promise<void> {
    await this.redis.set(this.keys.nonce(nonce), '1', 'EX', ttlSec);
  }
  async consume(nonce: string): Promise<boolean> {
    // DEL answers 1 to exactly one caller, however many race.
    return (await this.redis.del(this.keys.nonce(nonce))) === 1;
  }
}
