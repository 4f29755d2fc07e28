import type { PresenceRecord, PresenceStore } from './store.ts';

/** Single-process presence for the embedded mode: no other node can die. */
export class MemoryPresenceStore implements PresenceStore {
  private readonly conns = new Map<string, Set<string>>();
  private readonly seen = new Map<string, number>();

  async connect(user: string, connection: string): Promise<boolean> {
    let set = this.conns.get(user);
    if (!set) this.conns.set(user, (set = new Set()));
    set.add(connection);
    return set.size === 1;
  }
  async disconnect(user: string, connection: string, at: number): Promise<boolean> {
    const set = this.conns.get(user);
    if (!set || !set.delete(connection)) return false;
    if (set.size > 0) return false;
    this.conns.delete(user);
    this.seen.set(user, at);
    return true;
  }
  async query(users: string[]): Promise<Map<string, PresenceRecord>> {
    const out = new Map<string, PresenceRecord>();
    for (const u of users) {
      const online = (this.conns.get(u)?.size ?? 0) > 0;
      out.set(u, { online, lastSeen: online ? null : (this.seen.get(u) ?? null) });
    }
    return out;
  }
  async heartbeat(): Promise<void> {}
  async sweep(): Promise<{ user: string; lastSeen: number }[]> {
    return [];
  }
  async leave(): Promise<void> {}
}
