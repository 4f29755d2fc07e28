import { MAX_ENS_BATCH, type EnsResolveResult } from '../../protocol/index.ts';
import { normalize } from './address.ts';
import type { Engine } from './engine.ts';
import { errorCode } from './errors.ts';
import { Emitter } from './events.ts';

export interface NameEvents {
  /** A verified ENS name became known for an address (null: it has none). */
  change: { address: string; name: string | null };
}

/** How long an answer with no name, or a lookup that could not be made, waits before being asked again. */
const RETRY_MS = 60_000;

/**
 * ENS primary names for display. `want()` queues addresses and asks the server in batches
 * (one `ens.names` per tick, at most 50 addresses each); `display()` gives the name or the
 * short address. Names are only what the server verified (reverse record confirmed by the
 * forward record). A server without ENS (CHAIN_NOT_CONFIGURED) turns lookups off quietly:
 * names are a nicety and must never get in the way of chat.
 */
export class NameClient extends Emitter<NameEvents> {
  private readonly names = new Map<string, string | null>();
  private readonly askedAt = new Map<string, number>();
  private queued = new Set<string>();
  private flushing = false;
  private disabled = false;

  constructor(
    private readonly engine: Engine,
    private readonly now: () => number = Date.now,
  ) {
    super();
  }

  /** The verified name of an address, or null when it has none or it is not known yet. */
  get(address: string): string | null {
    // Display code passes whatever it has (even an empty string): never throw from here.
    try {
      return this.names.get(normalize(address)) ?? null;
    } catch {
      return null;
    }
  }

  /** The name where there is one, else the short address (`0x1234…abcd`). */
  display(address: string): string {
    const name = this.get(address);
    if (name) return name;
    return address.length > 12 ? `${address.slice(0, 6)}…${address.slice(-4)}` : address;
  }

  /** Asks for the names of these addresses soon (batched; already known or recently asked ones are skipped). */
  want(addresses: string[]): void {
    if (this.disabled) return;
    const now = this.now();
    for (const a of addresses) {
      const key = normalize(a);
      if (this.names.get(key)) continue;
      const at = this.askedAt.get(key);
      if (at !== undefined && now - at < RETRY_MS) continue;
      this.queued.add(key);
    }
    if (this.queued.size > 0 && !this.flushing) {
      this.flushing = true;
      queueMicrotask(() => void this.flush());
    }
  }

  /** The address a name (`alice.eth`) points at; ENS_NAME_NOT_FOUND, CHAIN_UNAVAILABLE or CHAIN_NOT_CONFIGURED otherwise. */
  async resolve(name: string): Promise<EnsResolveResult> {
    const r = await this.engine.signal.request('ens.resolve', { name: name.trim() });
    this.set(r.address, r.name);
    return r;
  }

  private async flush(): Promise<void> {
    try {
      while (this.queued.size > 0 && !this.disabled) {
        const batch = [...this.queued].slice(0, MAX_ENS_BATCH);
        for (const a of batch) this.queued.delete(a);
        const at = this.now();
        for (const a of batch) this.askedAt.set(a, at);
        try {
          const r = await this.engine.signal.request('ens.names', { addresses: batch });
          for (const n of r.names) {
            // An address left unnamed because its lookup failed is asked again after RETRY_MS.
            if (n.name !== null || !r.incomplete) this.set(n.address, n.name);
          }
        } catch (err) {
          if (errorCode(err) === 'CHAIN_NOT_CONFIGURED') this.disabled = true;
          // Anything else: the names stay unknown and are asked again later.
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  private set(address: string, name: string | null): void {
    const key = normalize(address);
    const old = this.names.get(key);
    this.names.set(key, name);
    if (old !== name) this.emit('change', { address: key, name });
  }
}
