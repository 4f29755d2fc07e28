import { and, desc, asc, eq, gt, inArray, isNull, lt, lte, not, notLike, or, sql } from 'drizzle-orm';
import type { Connection, Db } from './client.ts';
import { attachments, messages } from './schema.ts';

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
  /** Not shown to the recipient (blocked sender, or a deleted request). */
  withheld: boolean;
  attachment: { id: string; mime: string; size: number } | null;
}

export type InsertOutcome =
  /** `withheld`: stored for the sender only; the recipient blocked the sender. */
  | { ok: true; id: bigint; createdAt: Date; duplicate: boolean; withheld: boolean }
  | { ok: false; reason: 'idempotency_conflict' };

export interface DeliveredMark {
  conversation: string;
  recipient: string;
  ids: bigint[];
}
export interface ReadMark {
  conversation: string;
  recipient: string;
  peer: string;
  upTo: bigint;
}
/** The rows a receipt changed (ascending ids) and when. */
export interface ReceiptUpdate {
  ids: bigint[];
  at: Date;
}
interface ReceiptRow {
  id: string;
  conversation: string;
  recipient: string;
  at: Date | string;
}

const MARK_DELIVERED = `
update messages m set delivered_at = now()
from unnest($1::text[], $2::text[], $3::int8[]) as i(conversation, recipient, id)
where m.conversation = i.conversation and m.recipient = i.recipient and m.id = i.id and m.delivered_at is null and not m.withheld
returning m.id::text as id, m.conversation, m.recipient, m.delivered_at as at`;

/**
 * Marks read up to the highest mark per conversation and reader, and sets the reader's unread
 * count to what is left above it. The count reads the statement's snapshot (before the
 * update), where the unread rows above the mark are exactly the ones the update leaves.
 */
const MARK_READ = `
with input as (
  select conversation, recipient, max(peer) as peer, max(up_to) as up_to
  from unnest($1::text[], $2::text[], $3::text[], $4::int8[]) as t(conversation, recipient, peer, up_to)
  group by conversation, recipient
), upd as (
  update messages m set read_at = now(), delivered_at = coalesce(m.delivered_at, now())
  from input i
  where m.conversation = i.conversation and m.recipient = i.recipient and m.id <= i.up_to and m.read_at is null and not m.withheld
  returning m.id, m.conversation, m.recipient, m.read_at
), counts as (
  update contacts c set unread = (
    select count(*)::int from messages u
    where u.conversation = i.conversation and u.recipient = i.recipient and u.read_at is null and not u.withheld and u.id > i.up_to
  )
  from input i where c.owner = i.recipient and c.peer = i.peer
)
select id::text as id, conversation, recipient, read_at as at from upd`;

type PartialUpdate = { ids: bigint[]; at: Date | null };

/** Ids ascending; a receipt that changed nothing is dated now. */
function finish(out: PartialUpdate[]): ReceiptUpdate[] {
  return out.map((o) => ({ ids: o.ids.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)), at: o.at ?? new Date() }));
}

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
  withheld: messages.withheld,
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
  withheld: boolean;
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
    withheld: r.withheld,
    attachment: r.attachmentId && r.attMime !== null && r.attSize !== null ? { id: r.attachmentId, mime: r.attMime, size: r.attSize } : null,
  };
}

/**
 * One statement (its own transaction, one round trip): insert the batch in order, skip
 * retried keys, and fold the new rows into both sides' conversation list rows; the sender's
 * row starts (and stays) sharing its presence with the recipient. Group rows (`g:…`) touch no
 * contact row: a group's list entry reads its newest row, and receipts are member cursors. The contacts
 * are upserted sorted so concurrent batches lock rows in the same order.
 *
 * A message to someone who blocked its sender is stored withheld and left out of the
 * recipient's conversation row: the block check is one primary-key probe of `blocks` inside
 * this statement, so it costs no round trip and no cache can make it stale.
 */
const INSERT_BATCH = `
with input as (
  select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::uuid[])
    with ordinality as t(conversation, sender, recipient, client_id, kind, body, attachment_id, ord)
), ins as (
  insert into messages (conversation, sender, recipient, client_id, kind, body, attachment_id, delivered_at, read_at, withheld)
  select i.conversation, i.sender, i.recipient, i.client_id, i.kind, i.body, i.attachment_id, g.at, g.at,
    exists (select 1 from blocks b where b.owner = i.recipient and b.blocked = i.sender)
  from input i cross join lateral (select case when i.conversation like 'g:%' then now() end as at) g order by i.ord
  on conflict (conversation, sender, client_id) do nothing
  returning id, conversation, sender, recipient, client_id, created_at, withheld
), pair as (
  select * from ins where conversation not like 'g:%'
), sides as (
  select sender as owner, recipient as peer, id, created_at, 0 as unread, true as shares from pair
  union all
  select recipient, sender, id, created_at, 1, false from pair where not withheld
), contact_rows as (
  insert into contacts (owner, peer, last_message_id, last_message_at, unread, shares_presence)
  select owner, peer, max(id), max(created_at), sum(unread)::int, bool_or(shares) from sides group by owner, peer order by owner, peer
  on conflict (owner, peer) do update set
    last_message_id = greatest(contacts.last_message_id, excluded.last_message_id),
    last_message_at = greatest(contacts.last_message_at, excluded.last_message_at),
    unread = contacts.unread + excluded.unread,
    shares_presence = contacts.shares_presence or excluded.shares_presence
)
select id::text as id, conversation, sender, client_id, created_at, withheld from ins`;

interface InsertedRow {
  id: string;
  conversation: string;
  sender: string;
  client_id: string;
  created_at: Date | string;
  withheld: boolean;
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

    const stored = new Map<string, { id: bigint; createdAt: Date; fresh: boolean; withheld: boolean; row: NewMessage }>();
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
      stored.set(k, { id: BigInt(r.id), createdAt: toDate(r.created_at), fresh: true, withheld: r.withheld === true, row: unique.get(k)! });
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
      for (const r of existing) stored.set(idemKey(r), { id: r.id, createdAt: r.createdAt, fresh: false, withheld: r.withheld, row: toStored(r) });
    }

    return batch.map((m): InsertOutcome => {
      const s = stored.get(idemKey(m));
      if (!s) throw new Error('message neither inserted nor found');
      // A repeat of a stored row, or of an earlier message in this batch, must carry the same
      // content: only the first one is stored, so a different text would be silently dropped.
      if (s.row !== m && !sameContent(s.row, m)) return { ok: false, reason: 'idempotency_conflict' };
      return { ok: true, id: s.id, createdAt: s.createdAt, duplicate: !s.fresh || s.row !== m, withheld: s.withheld };
    });
  }

  /** Newest first, below `before`; with a `viewer`, as it sees it (without what is withheld from it). */
  async history(conversation: string, before: bigint | null, limit: number, viewer?: string): Promise<StoredMessage[]> {
    const rows = await this.db
      .select(selection)
      .from(messages)
      .leftJoin(attachments, eq(attachments.id, messages.attachmentId))
      .where(and(eq(messages.conversation, conversation), viewer !== undefined ? visibleTo(viewer) : undefined, before !== null ? lt(messages.id, before) : undefined))
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
          or(and(eq(messages.recipient, address), eq(messages.withheld, false)), eq(messages.sender, address)),
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
        // `not withheld` as written in the partial index's predicate, so the planner uses it.
        .where(and(eq(messages.recipient, address), isNull(messages.deliveredAt), not(messages.withheld), lte(messages.id, after)))
        .orderBy(asc(messages.id))
        .limit(100);
      if (stragglers.length) return { messages: [...stragglers.map(toStored), ...out], more };
    }
    return { messages: out, more };
  }

  /** One recipient's delivered receipt for messages of one conversation. */
  async markDelivered(conversation: string, recipient: string, ids: bigint[]): Promise<ReceiptUpdate> {
    const [res] = await this.markDeliveredBatch([{ conversation, recipient, ids }]);
    return res!;
  }

  /** One recipient's read receipt: everything from `peer` up to `upTo`. */
  async markRead(conversation: string, recipient: string, peer: string, upTo: bigint): Promise<ReceiptUpdate> {
    const [res] = await this.markReadBatch([{ conversation, recipient, peer, upTo }]);
    return res!;
  }

  /**
   * Delivered receipts of many requests in one statement. Each row is reported to the first
   * request that named it (two devices acknowledging the same message: one update).
   */
  async markDeliveredBatch(items: DeliveredMark[]): Promise<ReceiptUpdate[]> {
    const conv: string[] = [];
    const rcpt: string[] = [];
    const id: string[] = [];
    const owner = new Map<string, number>();
    items.forEach((it, i) => {
      for (const m of it.ids) {
        const k = `${it.conversation}|${it.recipient}|${m}`;
        if (owner.has(k)) continue;
        owner.set(k, i);
        conv.push(it.conversation);
        rcpt.push(it.recipient);
        id.push(m.toString());
      }
    });
    const rows = await this.conn.run<ReceiptRow>('blockrtc_mark_delivered', MARK_DELIVERED, [conv, rcpt, id]);
    const out = items.map((): PartialUpdate => ({ ids: [], at: null }));
    for (const r of rows) {
      const o = out[owner.get(`${r.conversation}|${r.recipient}|${r.id}`)!]!;
      o.ids.push(BigInt(r.id));
      o.at ??= toDate(r.at);
    }
    return finish(out);
  }

  /**
   * Read receipts of many requests in one statement, with the readers' unread counts. Of
   * several requests for one conversation and reader, each gets the rows up to its own mark
   * that no lower mark took (as if they had run one after another, lowest first).
   */
  async markReadBatch(items: ReadMark[]): Promise<ReceiptUpdate[]> {
    const rows = await this.conn.run<ReceiptRow>('blockrtc_mark_read', MARK_READ, [
      items.map((i) => i.conversation),
      items.map((i) => i.recipient),
      items.map((i) => i.peer),
      items.map((i) => i.upTo.toString()),
    ]);
    const byKey = new Map<string, number[]>();
    items.forEach((it, i) => {
      const k = `${it.conversation}|${it.recipient}`;
      const list = byKey.get(k);
      if (list) list.push(i);
      else byKey.set(k, [i]);
    });
    for (const list of byKey.values()) list.sort((a, b) => (items[a]!.upTo < items[b]!.upTo ? -1 : items[a]!.upTo > items[b]!.upTo ? 1 : a - b));
    const out = items.map((): PartialUpdate => ({ ids: [], at: null }));
    for (const r of rows) {
      const idv = BigInt(r.id);
      const list = byKey.get(`${r.conversation}|${r.recipient}`)!;
      const o = out[list.find((i) => items[i]!.upTo >= idv) ?? list[list.length - 1]!]!;
      o.ids.push(idv);
      o.at ??= toDate(r.at);
    }
    return finish(out);
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

/** A message is hidden from its recipient when withheld; its sender always sees it. */
function visibleTo(viewer: string) {
  return or(eq(messages.withheld, false), eq(messages.sender, viewer));
}

function sameContent(a: NewMessage, b: NewMessage): boolean {
  return a.recipient === b.recipient && a.kind === b.kind && (a.body ?? null) === (b.body ?? null) && (a.attachmentId ?? null) === (b.attachmentId ?? null);
}
