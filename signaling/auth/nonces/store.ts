/** Single-use sign-in nonces with a time to live. */
export interface NonceStore {
  issue(nonce: string, ttlSec: number): Promise<void>;
  /** True exactly once per issued, unexpired nonce (atomic across nodes). */
  consume(nonce: string): Promise<boolean>;
}
