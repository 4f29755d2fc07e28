import { and, desc, asc, eq, gt, inArray, isNull, lt, lte, notLike, or, sql } from 'drizzle-orm';
import type { Connection, Db } from './client.ts';
import { attachments, contacts, messages } from './schema.ts';

export type Kind = 'text' | 'audio' | 'video';

export interface NewMessage {
  conversation: string;
  sender: string;
  recipient: string;
  clientId: string;
  kind: Kind;
  body: string | null;
  attachmentId: string | null;
}

export interface StoredMessage extends NewMessage {
  id: bigint;
  createdAt: Date;
  deliveredAt: Date | null;
  readAt: Date | null;
  attachment: { id: string; mime: string; size: number } | null;
}

export type InsertOutcome =
  | { ok: true; id: bigint; createdAt: Date; duplicate: boolean }
  | { ok: false; reason: 'idempotency_conflict' };

/** The two addresses of a 1:1 conversation, lower-cased and sorted. */
export function conversationKey(a: string, b: string): string {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  return x < y ? `${x}:${y}` : `${y}:${x}`;
}

const idemKey = (m: { conversation: string; sender: string; clientId: string }) => `${m.conversation}|${m.sender}|${m.clientId}`;

const selection = {
  id: messages.id,
  conversation: messages.conversation,
  sender: messages.sender,
  recipient: messages.recipient,
  clientId: messages.clientId,
  kind: messages.kind,
  body: messages.body,
  attachmentId: messages.attachmentId,
  createdAt: messages.createdAt,
  deliveredAt: messages.deliveredAt,
  readAt: messages.readAt,
  attMime: attachments.mime,
  attSize: attachments.size,
};
interface Row extends Omit<NewMessage, 'kind'> {
  /** `system` rows exist only in group conversations, which this store does not read. */
  kind: Kind | 'system';
  id: bigint;
  createdAt: Date;
  deliveredAt: Date | null;
  readAt: Date | null;
  attMime: string | null;
  attSize: number | null;
}

function toStored(r: Row): StoredMessage {
  return {
    id: r.id,
    conversation: r.conversation,
    sender: r.sender,
    recipient: r.recipient,
    clientId: r.clientId,
    kind: r.kind as Kind,
    body: r.body,
    attachmentId: r.attachmentId,
    createdAt: r.createdAt,
    deliveredAt: r.deliveredAt,
    readAt: r.readAt,
    attachment: r.attachmentId && r.attMime !== null && r.attSize !== null ? { id: r.attachmentId, mime: r.attMime, size: r.attSize } : null,
  };
}

/**
 * One statement (its own transaction, one round trip): insert the batch in order, skip
 * retried keys, and fold the new rows into both sides' conversation list rows; the sender's
 * row starts (and stays) sharing its presence with the recipient. Group rows (`g:…`) touch no
 * contact row: a group's list entry reads its newest row, and receipts are member cursors. The contacts
 * are upserted sorted so concurrent batches lock rows in the same order.
 */
const INSERT_BATCH = `
with input as (
  select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::uuid[])
    with ordinality as t(conversation, sender, recipient, client_id, kind, body, attachment_id, ord)
), ins as (
  insert into messages (conversation, sender, recipient, client_id, kind, body, attachment_id, delivered_at, read_at)
  select conversation, sender, recipient, client_id, kind, body, attachment_id, g.at, g.at
  from input cross join lateral (select case when conversation like 'g:%' then now() end as at) g order by ord
  on conflict (conversation, sender, client_id) do nothing
  returning id, conversation, sender, recipient, client_id, created_at
), pair as (
  select * from ins where conversation not like 'g:%'
), sides as (
  select sender as owner, recipient as peer, id, created_at, 0 as unread, true as shares from pair
  union all
  select recipient, sender, id, created_at, 1, false from pair
), contact_rows as (
  insert into contacts (owner, peer, last_message_id, last_message_at, unread, shares_presence)
  select owner, peer, max(id), max(created_at), sum(unread)::int, bool_or(shares) from sides group by owner, peer order by owner, peer
  on conflict (owner, peer) do update set
    last_message_id = greatest(contacts.last_message_id, excluded.last_message_id),
    last_message_at = greatest(contacts.last_message_at, excluded.last_message_at),
    unread = contacts.unread + excluded.unread,
    shares_presence = contacts.shares_presence or excluded.shares_presence
)
select id::text as id, conversation, sender, client_id, created_at from ins`;

interface InsertedRow {
  id: string;
  conversation: string;
  sender: string;
  client_id: string;
  created_at: Date | string;
}

/** Raw results: node-postgres parses timestamptz into a Date, PGlite may hand back text. */
function toDate(v: Date | string): Date {
  return v instanceof Date ? v : new Date(v);
}

export class MessageStore {
  private readonly db: Db;
  constructor(private readonly conn: Connection) {
    this.db = conn.db;
  }

  /**
   * Stores a batch in one transaction (one commit for many messages: group commit).
   * Retries (same conversation, sender, client id) return the stored row instead of a new one.
   * Returns one outcome per input, in order; resolves only once the rows are durable.
   */
  async insertBatch(batch: NewMessage[]): Promise<InsertOutcome[]> {
    // Collapse repeats inside the batch so one statement never inserts the same key twice.
    const unique = new Map<string, NewMessage>();
    for (const m of batch) if (!unique.has(idemKey(m))) unique.set(idemKey(m), m);
    const rows = [...unique.values()];

    const stored = new Map<string, { id: bigint; createdAt: Date; fresh: boolean; row: NewMessage }>();
    const col = <K extends keyof NewMessage>(k: K) => rows.map((r) => r[k]);
    const inserted = await this.conn.run<InsertedRow>('blockrtc_insert_messages', INSERT_BATCH, [
      col('conversation'),
      col('sender'),
      col('recipient'),
      col('clientId'),
      col('kind'),
      col('body'),
      col('attachmentId'),
    ]);
    for (const r of inserted) {
      const k = idemKey({ conversation: r.conversation, sender: r.sender, clientId: r.client_id });
      stored.set(k, { id: BigInt(r.id), createdAt: toDate(r.created_at), fresh: true, row: unique.get(k)! });
    }

    // Retries: the rows already stored (committed, as ON CONFLICT waited for any writer in flight).
    const missing = rows.filter((r) => !stored.has(idemKey(r)));
    if (missing.length > 0) {
      const existing = await this.db
        .select({ ...selection })
        .from(messages)
        .leftJoin(attachments, eq(attachments.id, messages.attachmentId))
        .where(
          sql`(${messages.conversation}, ${messages.sender}, ${messages.clientId}) in (${sql.join(
            missing.map((m) => sql`(${m.conversation}, ${m.sender}, ${m.clientId})`),
            sql`, `,
          )})`,
        );
      for (const r of existing) stored.set(idemKey(r), { id: r.id, createdAt: r.createdAt, fresh: false, row: toStored(r) });
    }

    return batch.map((m): InsertOutcome => {
      const s = stored.get(idemKey(m));
      if (!s) throw new Error('message neither inserted nor found');
      // A repeat of a stored row, or of an earlier message in this batch, must carry the same
      // content: only the first one is stored, so a different text would be silently dropped.
      if (s.row !== m && !sameContent(s.row, m)) return { ok: false, reason: 'idempotency_conflict' };
      return { ok: true, id: s.id, createdAt: s.createdAt, duplicate: !s.fresh || s.row !== m };
    });
  }

  /** Newest first, below `before`. */
  async history(conversation: string, before: bigint | null, limit: number): Promise<StoredMessage[]> {
    const rows = await this.db
      .select(selection)
      .from(messages)
      .leftJoin(attachments, eq(attachments.id, messages.attachmentId))
      .where(and(eq(messages.conversation, conversation), before !== null ? lt(messages.id, before) : undefined))
      .orderBy(desc(messages.id))
      .limit(limit);
    return rows.map(toStored);
  }

  /**
   * Everything to or from `address` after the cursor, oldest first, plus messages to it
   * at or below the cursor that no device has acknowledged (a row whose id was allocated
   * before the cursor but committed after it).
   */
  async since(address: string, after: bigint | null, limit: number): Promise<{ messages: StoredMessage[]; more: boolean }> {
    const page = await this.db
      .select(selection)
      .from(messages)
      .leftJoin(attachments, eq(attachments.id, messages.attachmentId))
      .where(
        and(
          or(eq(messages.recipient, address), eq(messages.sender, address)),
          // Group rows the address sent are synced with its groups (GroupStore.since).
          notLike(messages.conversation, 'g:%'),
          after !== null ? gt(messages.id, after) : undefined,
        ),
      )
      .orderBy(asc(messages.id))
      .limit(limit + 1);
    const more = page.length > limit;
    const out = page.slice(0, limit).map(toStored);
    if (after !== null) {
      const stragglers = await this.db
        .select(selection)
        .from(messages)
        .leftJoin(attachments, eq(attachments.id, messages.attachmentId))
        .where(and(eq(messages.recipient, address), isNull(messages.deliveredAt), lte(messages.id, after)))
        .orderBy(asc(messages.id))
        .limit(100);
      if (stragglers.length) return { messages: [...stragglers.map(toStored), ...out], more };
    }
    return { messages: out, more };
  }

  async markDelivered(conversation: string, recipient: string, ids: bigint[]): Promise<{ ids: bigint[]; at: Date }> {
    const rows = await this.db
      .update(messages)
      .set({ deliveredAt: sql`now()` })
      .where(and(eq(messages.conversation, conversation), eq(messages.recipient, recipient), inArray(messages.id, ids), isNull(messages.deliveredAt)))
      .returning({ id: messages.id, at: messages.deliveredAt });
    return { ids: rows.map((r) => r.id), at: rows[0]?.at ?? new Date() };
  }

  async markRead(conversation: string, recipient: string, peer: string, upTo: bigint): Promise<{ ids: bigint[]; at: Date }> {
    return this.db.transaction(async (tx) => {
      const rows = await tx
        .update(messages)
        .set({ readAt: sql`now()`, deliveredAt: sql`coalesce(${messages.deliveredAt}, now())` })
        .where(and(eq(messages.conversation, conversation), eq(messages.recipient, recipient), lte(messages.id, upTo), isNull(messages.readAt)))
        .returning({ id: messages.id, at: messages.readAt });
      await tx
        .update(contacts)
        .set({
          unread: sql`(select count(*)::int from ${messages} where ${messages.conversation} = ${conversation} and ${messages.recipient} = ${recipient} and ${messages.readAt} is null)`,
        })
        .where(and(eq(contacts.owner, recipient), eq(contacts.peer, peer)));
      return { ids: rows.map((r) => r.id), at: rows[0]?.at ?? new Date() };
    });
  }

  async byIds(keys: { conversation: string; id: bigint }[]): Promise<StoredMessage[]> {
    if (keys.length === 0) return [];
    const rows = await this.db
      .select(selection)
      .from(messages)
      .leftJoin(attachments, eq(attachments.id, messages.attachmentId))
      .where(sql`(${messages.conversation}, ${messages.id}) in (${sql.join(keys.map((k) => sql`(${k.conversation}, ${k.id})`), sql`, `)})`);
    return rows.map(toStored);
  }

  async count(): Promise<number> {
    const [r] = await this.db.select({ n: sql<number>`count(*)::int` }).from(messages);
    return r?.n ?? 0;
  }
}

function sameContent(a: NewMessage, b: NewMessage): boolean {
  return a.recipient === b.recipient && a.kind === b.kind && (a.body ?? null) === (b.body ?? null) && (a.attachmentId ?? null) === (b.attachmentId ?? null);
}
