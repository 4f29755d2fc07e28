import { and, desc, eq, inArray, sql } from 'drizzle-orm';
import { alias } from 'drizzle-orm/pg-core';
import type { Db } from './client.ts';
import { contacts } from './schema.ts';

export interface ContactRow {
  owner: string;
  peer: string;
  addedAt: Date;
  lastMessageId: bigint | null;
  lastMessageAt: Date | null;
  unread: number;
  /** The owner lets the peer see the owner's presence. */
  sharesPresence: boolean;
}

export class ContactStore {
  /**
   * Run at every first connect and last disconnect of a user: built once and prepared (a
   * named statement per connection), not rebuilt by the query builder each time.
   */
  private readonly watchersQuery;

  constructor(private readonly db: Db) {
    const sharing = alias(contacts, 'sharing');
    this.watchersQuery = db
      .select({ owner: contacts.owner })
      .from(contacts)
      .innerJoin(sharing, and(eq(sharing.owner, contacts.peer), eq(sharing.peer, contacts.owner)))
      .where(and(eq(contacts.peer, sql.placeholder('peer')), eq(sharing.sharesPresence, true)))
      .prepare('blockrtc_presence_watchers');
  }

  /**
   * Adds `peer` to `owner`'s contacts; adding someone shares the owner's presence with them.
   * `startedSharing`: the owner did not share with the peer before this call.
   */
  async add(owner: string, peer: string): Promise<ContactRow & { startedSharing: boolean }> {
    const [changed] = await this.db
      .insert(contacts)
      .values({ owner, peer, sharesPresence: true })
      .onConflictDoUpdate({ target: [contacts.owner, contacts.peer], set: { sharesPresence: true }, setWhere: eq(contacts.sharesPresence, false) })
      .returning();
    if (changed) return { ...changed, startedSharing: true };
    const [row] = await this.db.select().from(contacts).where(and(eq(contacts.owner, owner), eq(contacts.peer, peer)));
    if (!row) throw new Error('contact row vanished');
    return { ...row, startedSharing: false };
  }

  async list(owner: string, limit = 500): Promise<ContactRow[]> {
    return this.db
      .select()
      .from(contacts)
      .where(eq(contacts.owner, owner))
      .orderBy(desc(sql`coalesce(${contacts.lastMessageAt}, ${contacts.addedAt})`))
      .limit(limit);
  }

  /**
   * The audience of `peer`'s presence: users who have `peer` as a contact and with whom `peer`
   * shares its presence. One query: the `contacts_peer` index, then the primary key.
   */
  async watchers(peer: string): Promise<string[]> {
    const rows = await this.watchersQuery.execute({ peer });
    return rows.map((r) => r.owner);
  }

  /** Which of `owners` share their presence with `viewer` (one query on the primary key). */
  async sharingWith(viewer: string, owners: string[]): Promise<Set<string>> {
    if (owners.length === 0) return new Set();
    const rows = await this.db
      .select({ owner: contacts.owner })
      .from(contacts)
      .where(and(eq(contacts.peer, viewer), inArray(contacts.owner, owners), eq(contacts.sharesPresence, true)));
    return new Set(rows.map((r) => r.owner));
  }
}
