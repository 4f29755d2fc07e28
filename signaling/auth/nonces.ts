import type { RedisClient, RedisKeys } from '../../infra/redis/connect.ts';

/** Single-use sign-in nonces with a time to live. */
export interface NonceStore {
  issue(nonce: string, ttlSec: number): Promise<void>;
  /** True exactly once per issued, unexpired nonce (atomic across nodes). */
  consume(nonce: string): Promise<boolean>;
}

export class MemoryNonceStore implements NonceStore {
  private readonly nonces = new Map<string, number>();
  async issue(nonce: string, ttlSec: number): Promise<void> {
    const now = Date.now();
    if (this.nonces.size > 10_000) for (const [n, exp] of this.nonces) if (exp <= now) this.nonces.delete(n);
    this.nonces.set(nonce, now + ttlSec * 1000);
  }
  async consume(nonce: string): Promise<boolean> {
    const exp = this.nonces.get(nonce);
    this.nonces.delete(nonce);
    return exp !== undefined && exp > Date.now();
  }
}

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
