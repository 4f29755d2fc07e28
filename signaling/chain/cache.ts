/**
 * A bounded in-process cache of chain reads with a time to live. Concurrent misses for one
 * key share one load. `fresh()` only returns values younger than the TTL (gates must notice
 * a transfer once it passes); `stale()` returns an old value at once and refreshes it in the
 * background (names: a slow chain never delays a chat screen).
 */
export class TtlCache<V> {
  private readonly entries = new Map<string, { value: V; at: number }>();
  private readonly loading = new Map<string, Promise<V>>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries = 50_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** A value no older than the TTL, loading it when there is none. */
  async fresh(key: string, load: () => Promise<V>): Promise<V> {
    const hit = this.entries.get(key);
    if (hit && this.now() - hit.at < this.ttlMs) return hit.value;
    return this.load(key, load);
  }

  /**
   * Any cached value, however old (refreshed in the background once past the TTL; a failed
   * refresh keeps the old value); loads and waits only when there is none.
   */
  async stale(key: string, load: () => Promise<V>, onRefreshError: (err: unknown) => void): Promise<V> {
    const hit = this.entries.get(key);
    if (!hit) return this.load(key, load);
    if (this.now() - hit.at >= this.ttlMs) this.load(key, load).catch(onRefreshError);
    return hit.value;
  }

  get size(): number {
    return this.entries.size;
  }

  private load(key: string, load: () => Promise<V>): Promise<V> {
    const pending = this.loading.get(key);
    if (pending) return pending;
    const p = load()
      .then((value) => {
        this.entries.delete(key);
        // Oldest inserted first out: Map keeps insertion order.
        if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
        this.entries.set(key, { value, at: this.now() });
        return value;
      })
      .finally(() => this.loading.delete(key));
    this.loading.set(key, p);
    return p;
  }
}
