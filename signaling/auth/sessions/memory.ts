import { randomUUID } from 'node:crypto';
import { ENDED_RETENTION_MS, type SessionRecord, type SessionStore } from './store.ts';

/** One process (embedded mode): a map pruned of ended sessions as it grows. */
export class MemorySessionStore implements SessionStore {
  private readonly sessions = new Map<string, SessionRecord>();
  private ended: { id: string; at: number }[] = [];

  async create(address: string, maxAgeSec: number): Promise<SessionRecord> {
    const now = Date.now();
    if (this.sessions.size > 10_000) for (const [id, s] of this.sessions) if (s.expiresAt <= now) this.sessions.delete(id);
    const rec: SessionRecord = { id: randomUUID(), address, expiresAt: now + maxAgeSec * 1000, gen: 1, previousUntil: 0 };
    this.sessions.set(rec.id, rec);
    return { ...rec };
  }

  async get(id: string): Promise<SessionRecord | null> {
    const rec = this.sessions.get(id);
    if (!rec) return null;
    if (rec.expiresAt <= Date.now()) {
      this.sessions.delete(id);
      return null;
    }
    return { ...rec };
  }

  async rotate(id: string, graceMs: number, fromGen: number): Promise<SessionRecord | null> {
    const rec = await this.get(id);
    if (!rec) return null;
    if (rec.gen !== fromGen) return rec;
    const next = { ...rec, gen: rec.gen + 1, previousUntil: Date.now() + graceMs };
    this.sessions.set(id, next);
    return { ...next };
  }

  async end(id: string): Promise<boolean> {
    const existed = this.sessions.delete(id);
    const now = Date.now();
    this.ended = this.ended.filter((e) => e.at > now - ENDED_RETENTION_MS);
    this.ended.push({ id, at: now });
    return existed;
  }

  async endedSince(since: number): Promise<string[]> {
    return this.ended.filter((e) => e.at >= since).map((e) => e.id);
  }

  async connectionCount(): Promise<number | null> {
    return null;
  }
}
