import type { NonceStore } from './store.ts';

/** One process: a map with expiry times, pruned as it grows. */
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
