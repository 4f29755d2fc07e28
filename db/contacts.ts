import { and, desc, eq, sql } from 'drizzle-orm';
import type { Db } from './client.ts';
import { contacts } from './schema.ts';

export interface ContactRow {
  owner: string;
  peer: string;
  addedAt: Date;
  lastMessageId: bigint | null;
  lastMessageAt: Date | null;
  unread: number;
}

export class ContactStore {
  constructor(private readonly db: Db) {}

  async add(owner: string, peer: string): Promise<ContactRow> {
    await this.db.insert(contacts).values({ owner, peer }).onConflictDoNothing();
    const [row] = await this.db.select().from(contacts).where(and(eq(contacts.owner, owner), eq(contacts.peer, peer)));
    if (!row) throw new Error('contact row vanished');
    return row;
  }

  async list(owner: string, limit = 500): Promise<ContactRow[]> {
    return this.db
      .select()
      .from(contacts)
      .where(eq(contacts.owner, owner))
      .orderBy(desc(sql`coalesce(${contacts.lastMessageAt}, ${contacts.addedAt})`))
      .limit(limit);
  }

  /** Who has `peer` as a contact: the audience of its presence. */
  async watchers(peer: string): Promise<string[]> {
    const rows = await this.db.select({ owner: contacts.owner }).from(contacts).where(eq(contacts.peer, peer));
    return rows.map((r) => r.owner);
  }
}
