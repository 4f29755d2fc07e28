import { inArray, sql } from 'drizzle-orm';
import type { Db } from './client.ts';
import { users } from './schema.ts';

export class UserStore {
  constructor(private readonly db: Db) {}

  /** Creates the user on first sign-in. */
  async signedIn(address: string): Promise<void> {
    await this.db
      .insert(users)
      .values({ address })
      .onConflictDoUpdate({ target: users.address, set: { lastSignInAt: sql`now()` } });
  }

  async setLastSeen(addresses: string[], at: Date): Promise<void> {
    if (addresses.length === 0) return;
    await this.db.update(users).set({ lastSeenAt: at }).where(inArray(users.address, addresses));
  }

  async lastSeen(addresses: string[]): Promise<Map<string, Date | null>> {
    const out = new Map<string, Date | null>();
    if (addresses.length === 0) return out;
    const rows = await this.db
      .select({ address: users.address, lastSeenAt: users.lastSeenAt })
      .from(users)
      .where(inArray(users.address, addresses));
    for (const r of rows) out.set(r.address, r.lastSeenAt);
    return out;
  }
}
