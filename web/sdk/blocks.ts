/**
 * My block list, kept the same on all my devices: a change made on another one arrives as
 * `blocks.changed`, and after a reconnect (events may have been missed) the list is read again.
 */
import type { BlockEntry } from '../../protocol/index.ts';
import { normalize } from './address.ts';
import type { Engine } from './engine.ts';
import { Emitter } from './events.ts';

export interface BlocksEvents {
  /** An address was blocked or unblocked (here, on another device, or found on a re-read). */
  change: { address: string; blocked: boolean };
}

export class BlocksClient extends Emitter<BlocksEvents> {
  private readonly entries = new Map<string, BlockEntry>();
  private loaded = false;

  constructor(private readonly engine: Engine) {
    super();
    const s = engine.signal;
    s.on('blocks.changed', (e) => (e.blocked ? this.set({ address: e.address, blockedAt: e.at }) : this.unset(e.address)));
    s.on('signal.open', ({ reconnect }) => {
      if (reconnect && this.loaded) void this.list().catch(() => undefined);
    });
    engine.on('session', () => {
      this.entries.clear();
      this.loaded = false;
    });
  }

  /** The blocked addresses known here (after `list()` or a change). */
  get blocked(): BlockEntry[] {
    return [...this.entries.values()];
  }

  isBlocked(address: string): boolean {
    return this.entries.has(normalize(address));
  }

  async list(): Promise<BlockEntry[]> {
    const r = await this.engine.signal.request('blocks.list', {});
    const fresh = new Map(r.blocks.map((b) => [normalize(b.address), b]));
    for (const old of [...this.entries.keys()]) if (!fresh.has(old)) this.unset(old);
    for (const b of fresh.values()) this.set(b);
    this.loaded = true;
    return this.blocked;
  }

  /** Idempotent: blocking someone already blocked answers the existing entry. */
  async add(address: string): Promise<BlockEntry> {
    const r = await this.engine.signal.request('blocks.add', { address: normalize(address) });
    this.set(r.block);
    return r.block;
  }

  /** Idempotent: false when the address was not blocked. */
  async remove(address: string): Promise<boolean> {
    const peer = normalize(address);
    const r = await this.engine.signal.request('blocks.remove', { address: peer });
    this.unset(peer);
    return r.removed;
  }

  private set(entry: BlockEntry): void {
    const address = normalize(entry.address);
    const had = this.entries.has(address);
    this.entries.set(address, { ...entry, address });
    if (!had) this.emit('change', { address, blocked: true });
  }

  private unset(address: string): void {
    const peer = normalize(address);
    if (this.entries.delete(peer)) this.emit('change', { address: peer, blocked: false });
  }
}
