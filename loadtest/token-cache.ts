/**
 * Session tokens kept between runs in one JSON file, keyed by target origin, seed and user
 * index. A cached token is reused while it has more than the run's length left, so repeated
 * runs skip SIWE sign-in (and the per-IP sign-in limit) until tokens near expiry.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export interface CachedToken {
  address: string;
  token: string;
  /** Epoch ms. */
  expiresAt: number;
}

type CacheFile = { version: 1; entries: Record<string, CachedToken> };

export function cacheKey(origin: string, seed: string, index: number): string {
  return `${origin}|${seed}|${index}`;
}

export class TokenCache {
  private entries: Record<string, CachedToken> = {};

  constructor(private readonly path: string | null) {
    if (!path) return;
    try {
      const f = JSON.parse(readFileSync(path, 'utf8')) as CacheFile;
      if (f.version === 1 && f.entries && typeof f.entries === 'object') this.entries = f.entries;
    } catch {
      // no cache yet, or unreadable: start empty
    }
  }

  /** A token that stays valid for at least `minValidMs` more, else undefined. */
  get(key: string, minValidMs: number): CachedToken | undefined {
    const e = this.entries[key];
    return e && e.expiresAt - Date.now() > minValidMs ? e : undefined;
  }

  /** The address even of an expired entry (skips deriving the key's address again). */
  address(key: string): string | undefined {
    return this.entries[key]?.address;
  }

  set(key: string, t: CachedToken): void {
    const old = this.entries[key];
    if (!old || old.expiresAt < t.expiresAt) this.entries[key] = t;
  }

  /** Writes the file (atomically, owner-only: tokens are credentials) and drops expired entries. */
  save(): void {
    if (!this.path) return;
    const now = Date.now();
    for (const [k, e] of Object.entries(this.entries)) if (e.expiresAt <= now) delete this.entries[k];
    mkdirSync(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify({ version: 1, entries: this.entries } satisfies CacheFile), { mode: 0o600 });
    renameSync(tmp, this.path);
  }
}
