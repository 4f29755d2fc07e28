import { and, desc, eq, inArray, notExists, sql } from 'drizzle-orm';
import { alias } from 'drizzle-orm/pg-core';
import type { Db } from './client.ts';
import { conversationKey } from './messages.ts';
import { blocks, contacts, messages } from './schema.ts';

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
      .where(
        and(
          eq(contacts.peer, sql.placeholder('peer')),
          eq(sharing.sharesPresence, true),
          notExists(db.select({ one: sql`1` }).from(blocks).where(and(eq(blocks.owner, sql.placeholder('peer')), eq(blocks.blocked, contacts.owner)))),
        ),
      )
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

  /**
   * `owner`'s conversations, newest first. `accepted`: the main list (the owner accepted the
   * peer); `requests`: the others, less the peers the owner blocked; `all`: every row.
   */
  async list(owner: string, limit = 500, which: 'all' | 'accepted' | 'requests' = 'all'): Promise<ContactRow[]> {
    const filter =
      which === 'accepted'
        ? eq(contacts.sharesPresence, true)
        : which === 'requests'
          ? and(
              eq(contacts.sharesPresence, false),
              notExists(this.db.select({ one: sql`1` }).from(blocks).where(and(eq(blocks.owner, contacts.owner), eq(blocks.blocked, contacts.peer)))),
            )
          : undefined;
    return this.db
      .select()
      .from(contacts)
      .where(and(eq(contacts.owner, owner), filter))
      .orderBy(desc(sql`coalesce(${contacts.lastMessageAt}, ${contacts.addedAt})`))
      .limit(limit);
  }

  /**
   * Accepts `peer`'s request: the owner starts sharing with it, like `add`, but only where
   * a conversation exists. Null when there is none; `startedSharing` false if already accepted.
   */
  async accept(owner: string, peer: string): Promise<(ContactRow & { startedSharing: boolean }) | null> {
    const [changed] = await this.db
      .update(contacts)
      .set({ sharesPresence: true })
      .where(and(eq(contacts.owner, owner), eq(contacts.peer, peer), eq(contacts.sharesPresence, false)))
      .returning();
    if (changed) return { ...changed, startedSharing: true };
    const [row] = await this.db.select().from(contacts).where(and(eq(contacts.owner, owner), eq(contacts.peer, peer)));
    return row ? { ...row, startedSharing: false } : null;
  }

  /**
   * Deletes `peer`'s request from `owner`'s list and withholds its messages from the owner
   * (the sender keeps its copy), in one transaction. False when it is no request (none, or
   * accepted: an accepted conversation is not deleted here).
   */
  async deleteRequest(owner: string, peer: string): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const gone = await tx
        .delete(contacts)
        .where(and(eq(contacts.owner, owner), eq(contacts.peer, peer), eq(contacts.sharesPresence, false)))
        .returning({ peer: contacts.peer });
      if (gone.length === 0) return false;
      await tx
        .update(messages)
        .set({ withheld: true })
        .where(and(eq(messages.conversation, conversationKey(owner, peer)), eq(messages.recipient, owner), eq(messages.withheld, false)));
      return true;
    });
  }

  /**
   * The audience of `peer`'s presence: users who have `peer` as a contact and with whom `peer`
   * shares its presence, less those `peer` blocked. One query: the `contacts_peer` index,
   * then primary keys.
   */
  async watchers(peer: string): Promise<string[]> {
    const rows = await this.watchersQuery.execute({ peer });
    return rows.map((r) => r.owner);
  }

  /** Which of `owners` accepted `viewer` (took part in the conversation or added it), blocks aside. */
  async acceptedBy(viewer: string, owners: string[]): Promise<Set<string>> {
    if (owners.length === 0) return new Set();
    const rows = await this.db
      .select({ owner: contacts.owner })
      .from(contacts)
      .where(and(eq(contacts.peer, viewer), inArray(contacts.owner, owners), eq(contacts.sharesPresence, true)));
    return new Set(rows.map((r) => r.owner));
  }

  /** Which of `owners` share their presence with `viewer` and did not block it (one query on primary keys). */
  async sharingWith(viewer: string, owners: string[]): Promise<Set<string>> {
    if (owners.length === 0) return new Set();
    const rows = await this.db
      .select({ owner: contacts.owner })
      .from(contacts)
      .where(
        and(
          eq(contacts.peer, viewer),
          inArray(contacts.owner, owners),
          eq(contacts.sharesPresence, true),
          notExists(this.db.select({ one: sql`1` }).from(blocks).where(and(eq(blocks.owner, contacts.owner), eq(blocks.blocked, viewer)))),
        ),
      );
    return new Set(rows.map((r) => r.owner));
  }
}
