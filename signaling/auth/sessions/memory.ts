import { randomUUID } from 'node:crypto';
import { ENDED_RETENTION_MS, type SessionRecord, type SessionStore, type SessionVouch } from './store.ts';

/** One process (embedded mode): a map pruned of expired sessions as it grows. */
export class MemorySessionStore implements SessionStore {
  private readonly sessions = new Map<string, SessionRecord>();
  private ended: { id: string; at: number }[] = [];

  private put(rec: SessionRecord): SessionRecord {
    const now = Date.now();
    if (this.sessions.size > 10_000) for (const [id, s] of this.sessions) if (s.expiresAt <= now) this.sessions.delete(id);
    this.sessions.set(rec.id, rec);
    return { ...rec };
  }

  async create(address: string, maxAgeSec: number): Promise<SessionRecord> {
    return this.put({ id: randomUUID(), address, expiresAt: Date.now() + maxAgeSec * 1000, gen: 1, previousUntil: 0, ended: false });
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

  async restore(v: SessionVouch): Promise<SessionRecord | null> {
    if (v.expiresAt <= Date.now()) return null;
    return (await this.get(v.id)) ?? this.put({ ...v, previousUntil: 0, ended: false });
  }

  async rotate(id: string, graceMs: number, fromGen: number): Promise<SessionRecord | null> {
    const rec = await this.get(id);
    if (!rec || rec.ended) return null;
    if (rec.gen !== fromGen) return rec;
    return this.put({ ...rec, gen: rec.gen + 1, previousUntil: Date.now() + graceMs });
  }

  async end(id: string, expiresAt: number): Promise<void> {
    const rec = this.sessions.get(id);
    this.put(rec ? { ...rec, ended: true } : { id, address: '', expiresAt, gen: 0, previousUntil: 0, ended: true });
    const now = Date.now();
    this.ended = this.ended.filter((e) => e.at > now - ENDED_RETENTION_MS);
    this.ended.push({ id, at: now });
  }

  async endedSince(since: number): Promise<string[]> {
    return this.ended.filter((e) => e.at >= since).map((e) => e.id);
  }

  async connectionCount(): Promise<number | null> {
    return null;
  }
}
