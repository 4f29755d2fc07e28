import type { PresenceState } from '../../protocol/index.ts';
import { normalize } from './address.ts';
import type { Engine } from './engine.ts';
import { Emitter } from './events.ts';

export interface PresenceEvents {
  change: PresenceState;
}

/**
 * Online/offline of contacts: pushed by the server for contacts, queried for anyone else.
 * A user who does not share its presence with us (it has neither messaged nor added us) is
 * unknown: `online` is null.
 */
export class PresenceClient extends Emitter<PresenceEvents> {
  private readonly states = new Map<string, PresenceState>();

  constructor(private readonly engine: Engine) {
    super();
    engine.signal.on('presence.update', (p) => this.set(p));
    // Pushes missed while disconnected are recovered by asking again.
    engine.signal.on('signal.open', ({ reconnect }) => {
      if (reconnect && this.states.size > 0) void this.query([...this.states.keys()]).catch(() => undefined);
    });
  }

  get(address: string): PresenceState | null {
    return this.states.get(normalize(address)) ?? null;
  }

  /** True only when the user is known to be online; false also when unknown. */
  isOnline(address: string): boolean {
    return this.get(address)?.online ?? false;
  }

  /** Online, offline, or null when the user does not share its presence with us. */
  onlineState(address: string): boolean | null {
    const p = this.get(address);
    return p ? p.online : false;
  }

  /** The user does not share its presence with us (the server answered unknown). */
  isUnknown(address: string): boolean {
    return this.get(address)?.online === null;
  }

  async query(addresses: string[]): Promise<PresenceState[]> {
    if (addresses.length === 0) return [];
    const r = await this.engine.signal.request('presence.query', { addresses: addresses.map(normalize) });
    for (const p of r.presence) this.set(p);
    return r.presence;
  }

  /** Seeds from data that already carries presence (contacts.list). */
  set(p: PresenceState): void {
    const key = normalize(p.address);
    const old = this.states.get(key);
    this.states.set(key, { ...p, address: key });
    if (!old || old.online !== p.online || old.lastSeen !== p.lastSeen) this.emit('change', { ...p, address: key });
  }
}
