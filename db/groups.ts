import { randomUUID } from 'node:crypto';
import { and, asc, desc, eq, gte, inArray, isNull, lt, lte, sql } from 'drizzle-orm';
import type { TokenGate } from '../protocol/gates.ts';
import type { GroupSystem } from '../protocol/group.ts';
import type { Connection, Db } from './client.ts';
import { attachments, calls, groupMembers, groups, messages } from './schema.ts';

export type GroupRow = typeof groups.$inferSelect;
export type MemberRow = typeof groupMembers.$inferSelect;
export type MemberState = MemberRow['state'];
export type Role = MemberRow['role'];
export type GroupMessageKind = 'text' | 'audio' | 'video' | 'system';

/** The conversation key (and `recipient`) of a group's message rows. */
export function groupConversation(groupId: string): string {
  return `g:${groupId.toLowerCase()}`;
}

export interface GroupMessageRow {
  id: bigint;
  groupId: string;
  conversation: string;
  sender: string;
  clientId: string;
  kind: GroupMessageKind;
  body: string | null;
  attachment: { id: string; mime: string; size: number } | null;
  createdAt: Date;
}

export interface GroupListRow {
  group: GroupRow;
  role: Role;
  state: MemberState;
  memberCount: number;
  readUpTo: bigint;
  lastMessage: GroupMessageRow | null;
  unread: number;
}

export interface ActiveCallRow {
  callId: string;
  kind: 'audio' | 'video';
  startedBy: string;
  startedAt: Date;
}

/** Member states that have (or had) a visible range of the group's messages. */
const MEMBER_STATES: MemberState[] = ['active', 'invited'];
/** Unread counts stop here (a badge shows 999+). */
const UNREAD_CAP = 999;
/** Senders looked up for one receipt event at most (the newest rows of the range). */
const RECEIPT_SCAN = 1000;

const toDate = (v: Date | string): Date => (v instanceof Date ? v : new Date(v));
const big = (v: string | number | bigint | null): bigint | null => (v === null ? null : BigInt(v));

interface RawMessage {
  id: string;
  conversation: string;
  sender: string;
  client_id: string;
  kind: GroupMessageKind;
  body: string | null;
  attachment_id: string | null;
  mime: string | null;
  size: number | null;
  created_at: Date | string;
}
function fromRaw(r: RawMessage): GroupMessageRow {
  return {
    id: BigInt(r.id),
    groupId: r.conversation.slice(2),
    conversation: r.conversation,
    sender: r.sender,
    clientId: r.client_id,
    kind: r.kind,
    body: r.body,
    attachment: r.attachment_id && r.mime !== null && r.size !== null ? { id: r.attachment_id, mime: r.mime, size: Number(r.size) } : null,
    createdAt: toDate(r.created_at),
  };
}

/**
 * Membership changes of one group, inside a transaction that holds the group row's lock:
 * changes to one group are serialized, so limits and roles are checked against the state
 * they change. The caller decides (policy); this only reads and writes.
 */
export class GroupTx {
  constructor(
    private readonly tx: Db,
    readonly group: GroupRow,
  ) {}

  /** Every row of the group (any state). */
  async members(): Promise<MemberRow[]> {
    return this.tx.select().from(groupMembers).where(eq(groupMembers.groupId, this.group.id)).orderBy(asc(groupMembers.since), sql`${groupMembers.role} = 'admin' desc`, asc(groupMembers.address));
  }

  /** Stores a system message (a row of the conversation) and returns it. */
  async system(body: GroupSystem): Promise<GroupMessageRow> {
    const conversation = groupConversation(this.group.id);
    const [row] = await this.tx
      .insert(messages)
      .values({ conversation, sender: body.by, recipient: conversation, clientId: `sys-${randomUUID()}`, kind: 'system', body: JSON.stringify(body), deliveredAt: sql`now()`, readAt: sql`now()` })
      .returning({ id: messages.id, clientId: messages.clientId, createdAt: messages.createdAt });
    return { id: row!.id, groupId: this.group.id, conversation, sender: body.by, clientId: row!.clientId, kind: 'system', body: JSON.stringify(body), attachment: null, createdAt: row!.createdAt };
  }

  /** Inserts or resets members: a (re)joined or (re)invited row starts with fresh cursors. */
  async put(rows: { address: string; role: Role; state: 'active' | 'invited'; addedBy: string; joinedFrom: bigint | null; gateVerifiedAt?: Date | null }[]): Promise<MemberRow[]> {
    if (rows.length === 0) return [];
    return this.tx
      .insert(groupMembers)
      .values(rows.map((r) => ({ groupId: this.group.id, ...r, gateVerifiedAt: r.gateVerifiedAt ?? null, visibleUntil: null, since: sql`now()` })))
      .onConflictDoUpdate({
        target: [groupMembers.groupId, groupMembers.address],
        set: {
          role: sql`excluded.role`,
          state: sql`excluded.state`,
          addedBy: sql`excluded.added_by`,
          since: sql`now()`,
          joinedFrom: sql`excluded.joined_from`,
          visibleUntil: null,
          deliveredUpTo: sql`0`,
          readUpTo: sql`0`,
          gateVerifiedAt: sql`excluded.gate_verified_at`,
        },
      })
      .returning();
  }

  /** Ends a membership (left/removed/declined); it keeps seeing messages up to `until`. */
  async end(address: string, state: 'left' | 'removed' | 'declined', until: bigint | null): Promise<void> {
    await this.tx
      .update(groupMembers)
      .set({ state, since: sql`now()`, visibleUntil: until })
      .where(and(eq(groupMembers.groupId, this.group.id), eq(groupMembers.address, address)));
  }

  async activate(address: string, joinedFrom: bigint, gateVerifiedAt: Date | null = null): Promise<void> {
    await this.tx
      .update(groupMembers)
      .set({ state: 'active', since: sql`now()`, joinedFrom, visibleUntil: null, deliveredUpTo: sql`0`, readUpTo: sql`0`, gateVerifiedAt })
      .where(and(eq(groupMembers.groupId, this.group.id), eq(groupMembers.address, address)));
  }

  async setRole(address: string, role: Role): Promise<void> {
    await this.tx
      .update(groupMembers)
      .set({ role })
      .where(and(eq(groupMembers.groupId, this.group.id), eq(groupMembers.address, address)));
  }

  async update(fields: { name?: string; description?: string | null; picture?: string | null; gate?: TokenGate | null }): Promise<GroupRow> {
    const [row] = await this.tx.update(groups).set(fields).where(eq(groups.id, this.group.id)).returning();
    return row!;
  }

  /**
   * A gate was set or cleared: with a gate, every active member is due for a check at once
   * (verified "at the epoch", so an outage gives them no grace: they never passed this gate)
   * except `passed` (checked just now); without one, nobody is tracked.
   */
  async resetGateChecks(gated: boolean, passed: string | null, at: Date): Promise<void> {
    const members = and(eq(groupMembers.groupId, this.group.id), eq(groupMembers.state, 'active'));
    await this.tx.update(groupMembers).set({ gateVerifiedAt: gated ? new Date(0) : null }).where(members);
    if (gated && passed) await this.tx.update(groupMembers).set({ gateVerifiedAt: at }).where(and(members, eq(groupMembers.address, passed)));
  }
}

/** An active member of a gated group, with the gate and when they last passed it. */
export interface GatedMembership {
  groupId: string;
  address: string;
  gate: TokenGate;
  verifiedAt: Date;
}

/** Groups, their members and the group view of the message table. */
export class GroupStore {
  private readonly db: Db;
  constructor(private readonly conn: Connection) {
    this.db = conn.db;
  }

  /** Creates a group and runs `fn` on it in the same transaction. */
  async create<T>(info: { name: string; description: string | null; picture: string | null; createdBy: string }, fn: (g: GroupTx) => Promise<T>): Promise<T> {
    return this.db.transaction(async (tx) => {
      const [group] = await tx.insert(groups).values(info).returning();
      return fn(new GroupTx(tx as unknown as Db, group!));
    });
  }

  /** Runs `fn` with the group locked (null when there is no such group); commits if it returns. */
  async change<T>(groupId: string, fn: (g: GroupTx) => Promise<T>): Promise<T | null> {
    return this.db.transaction(async (tx) => {
      const [group] = await tx.select().from(groups).where(eq(groups.id, groupId)).for('update');
      if (!group) return null;
      return fn(new GroupTx(tx as unknown as Db, group));
    });
  }

  async get(groupId: string): Promise<GroupRow | null> {
    const [row] = await this.db.select().from(groups).where(eq(groups.id, groupId));
    return row ?? null;
  }

  async member(groupId: string, address: string): Promise<MemberRow | null> {
    const [row] = await this.db
      .select()
      .from(groupMembers)
      .where(and(eq(groupMembers.groupId, groupId), eq(groupMembers.address, address)));
    return row ?? null;
  }

  /** Active and invited members, oldest first. */
  async members(groupId: string): Promise<MemberRow[]> {
    return this.db
      .select()
      .from(groupMembers)
      .where(and(eq(groupMembers.groupId, groupId), inArray(groupMembers.state, MEMBER_STATES)))
      .orderBy(asc(groupMembers.since), sql`${groupMembers.role} = 'admin' desc`, asc(groupMembers.address));
  }

  async activeAddresses(groupId: string): Promise<string[]> {
    const rows = await this.db
      .select({ address: groupMembers.address })
      .from(groupMembers)
      .where(and(eq(groupMembers.groupId, groupId), eq(groupMembers.state, 'active')));
    return rows.map((r) => r.address);
  }

  async activeCount(groupId: string): Promise<number> {
    const [r] = await this.db
      .select({ n: sql<number>`count(*)::int` })
      .from(groupMembers)
      .where(and(eq(groupMembers.groupId, groupId), eq(groupMembers.state, 'active')));
    return r?.n ?? 0;
  }

  /** The groups `address` is an active member of (a node subscribes to their channels). */
  async activeGroupIds(address: string): Promise<string[]> {
    const rows = await this.db
      .select({ id: groupMembers.groupId })
      .from(groupMembers)
      .where(and(eq(groupMembers.address, address), eq(groupMembers.state, 'active')));
    return rows.map((r) => r.id);
  }

  /** Active members of gated groups last checked before `before`, the oldest first (bounded work per sweep). */
  async gateDue(before: Date, limit: number): Promise<GatedMembership[]> {
    return this.gated(and(sql`${groupMembers.gateVerifiedAt} is not null`, lt(groupMembers.gateVerifiedAt, before)), limit);
  }

  /** The gated groups `address` is an active member of. */
  async gatedOf(address: string): Promise<GatedMembership[]> {
    return this.gated(and(eq(groupMembers.address, address), sql`${groupMembers.gateVerifiedAt} is not null`), 1000);
  }

  private async gated(where: ReturnType<typeof and>, limit: number): Promise<GatedMembership[]> {
    const rows = await this.db
      .select({ groupId: groupMembers.groupId, address: groupMembers.address, gate: groups.gate, verifiedAt: groupMembers.gateVerifiedAt })
      .from(groupMembers)
      .innerJoin(groups, eq(groups.id, groupMembers.groupId))
      .where(and(where, eq(groupMembers.state, 'active'), sql`${groups.gate} is not null`))
      .orderBy(asc(groupMembers.gateVerifiedAt))
      .limit(limit);
    return rows.map((r) => ({ groupId: r.groupId, address: r.address, gate: r.gate!, verifiedAt: r.verifiedAt! }));
  }

  /** Records a pass (only while the member is still active under a gate). */
  async markGateVerified(groupId: string, address: string, at: Date): Promise<void> {
    await this.db
      .update(groupMembers)
      .set({ gateVerifiedAt: at })
      .where(and(eq(groupMembers.groupId, groupId), eq(groupMembers.address, address), eq(groupMembers.state, 'active'), sql`${groupMembers.gateVerifiedAt} is not null`));
  }

  async activeCall(groupId: string): Promise<ActiveCallRow | null> {
    return (await this.activeCalls([groupId])).get(groupId) ?? null;
  }

  /** The running call of each group that has one (the newest, should there be two). */
  async activeCalls(groupIds: string[]): Promise<Map<string, ActiveCallRow>> {
    if (groupIds.length === 0) return new Map();
    const rows = await this.db
      .select({ groupId: calls.groupId, callId: calls.id, kind: calls.kind, startedBy: calls.initiator, startedAt: calls.createdAt })
      .from(calls)
      .where(and(inArray(calls.groupId, groupIds), isNull(calls.endedAt)))
      .orderBy(asc(calls.createdAt));
    return new Map(rows.map(({ groupId, ...call }) => [groupId!, call]));
  }

  /**
   * The conversation list's group rows of `address` (active and invited): per group its
   * newest visible message and the unread count (others' messages after the read cursor),
   * each an index range on the message table's (conversation, id) key.
   */
  async list(address: string, limit = 500): Promise<GroupListRow[]> {
    const rows = await this.conn.run<{
      id: string;
      name: string;
      description: string | null;
      picture: string | null;
      created_by: string;
      created_at: Date | string;
      gate: TokenGate | string | null;
      role: Role;
      state: MemberState;
      read_upto: string;
      member_count: number;
      unread: number;
      lm_id: string | null;
      lm_sender: string | null;
      lm_client_id: string | null;
      lm_kind: GroupMessageKind | null;
      lm_body: string | null;
      lm_at: Date | string | null;
    }>(
      'blockrtc_group_list',
      `select g.id, g.name, g.description, g.picture, g.created_by, g.created_at, g.gate, gm.role, gm.state, gm.read_upto::text as read_upto,
         (select count(*)::int from group_members c where c.group_id = g.id and c.state = 'active') as member_count,
         case when gm.state = 'active' then (
           select count(*)::int from (
             select 1 from messages u
             where u.conversation = 'g:' || g.id::text and u.id > greatest(gm.read_upto, gm.joined_from) and u.sender <> gm.address and u.kind <> 'system'
             limit ${UNREAD_CAP}) x
         ) else 0 end as unread,
         lm.id::text as lm_id, lm.sender as lm_sender, lm.client_id as lm_client_id, lm.kind as lm_kind, lm.body as lm_body, lm.created_at as lm_at
       from group_members gm
       join groups g on g.id = gm.group_id
       left join lateral (
         select m.id, m.sender, m.client_id, m.kind, m.body, m.created_at from messages m
         where gm.state = 'active' and m.conversation = 'g:' || g.id::text and m.id >= gm.joined_from
         order by m.id desc limit 1
       ) lm on true
       where gm.address = $1 and gm.state in ('active', 'invited')
       order by coalesce(lm.created_at, gm.since) desc
       limit $2`,
      [address, limit],
    );
    return rows.map((r) => ({
      group: {
        id: r.id,
        name: r.name,
        description: r.description,
        picture: r.picture,
        createdBy: r.created_by,
        createdAt: toDate(r.created_at),
        // Drivers differ on whether a jsonb column in a raw query comes parsed.
        gate: typeof r.gate === 'string' ? (JSON.parse(r.gate) as TokenGate) : r.gate,
      },
      role: r.role,
      state: r.state,
      memberCount: r.member_count,
      readUpTo: BigInt(r.read_upto),
      unread: r.unread,
      lastMessage:
        r.lm_id === null
          ? null
          : {
              id: BigInt(r.lm_id),
              groupId: r.id,
              conversation: groupConversation(r.id),
              sender: r.lm_sender!,
              clientId: r.lm_client_id!,
              kind: r.lm_kind!,
              body: r.lm_body,
              attachment: null,
              createdAt: toDate(r.lm_at!),
            },
    }));
  }

  /** Newest first, below `before`, inside the member's visible range. */
  async history(groupId: string, range: { from: bigint; until: bigint | null }, before: bigint | null, limit: number): Promise<GroupMessageRow[]> {
    const rows = await this.db
      .select({
        id: messages.id,
        conversation: messages.conversation,
        sender: messages.sender,
        clientId: messages.clientId,
        kind: messages.kind,
        body: messages.body,
        attachmentId: messages.attachmentId,
        mime: attachments.mime,
        size: attachments.size,
        createdAt: messages.createdAt,
      })
      .from(messages)
      .leftJoin(attachments, eq(attachments.id, messages.attachmentId))
      .where(
        and(
          eq(messages.conversation, groupConversation(groupId)),
          gte(messages.id, range.from),
          range.until !== null ? lte(messages.id, range.until) : undefined,
          before !== null ? lt(messages.id, before) : undefined,
        ),
      )
      .orderBy(desc(messages.id))
      .limit(limit);
    return rows.map((r) => ({
      id: r.id,
      groupId,
      conversation: r.conversation,
      sender: r.sender,
      clientId: r.clientId,
      kind: r.kind,
      body: r.body,
      attachment: r.attachmentId && r.mime !== null && r.size !== null ? { id: r.attachmentId, mime: r.mime, size: r.size } : null,
      createdAt: r.createdAt,
    }));
  }

  /**
   * Messages of every group `address` is or was a member of, after `after`, oldest first,
   * each group limited to the member's visible range (from its join to its removal): one
   * index range per group on (conversation, id), merged.
   */
  async since(address: string, after: bigint | null, limit: number): Promise<{ messages: GroupMessageRow[]; more: boolean }> {
    const rows = await this.conn.run<RawMessage>(
      'blockrtc_group_since',
      `select m.id::text as id, m.conversation, m.sender, m.client_id, m.kind, m.body, m.attachment_id, a.mime, a.size, m.created_at
       from group_members gm
       cross join lateral (
         select * from messages m
         where m.conversation = 'g:' || gm.group_id::text
           and m.id >= gm.joined_from and m.id > $2::bigint
           and (gm.visible_until is null or m.id <= gm.visible_until)
         order by m.id limit $3
       ) m
       left join attachments a on a.id = m.attachment_id
       where gm.address = $1 and gm.joined_from is not null
       order by m.id limit $3`,
      [address, (after ?? 0n).toString(), limit + 1],
    );
    return { messages: rows.slice(0, limit).map(fromRaw), more: rows.length > limit };
  }

  /**
   * Moves a member's delivered (and for `read`, read) cursor forward, never past the group's
   * newest message; returns the previous and new cursor, or null if not an active member.
   */
  async advance(groupId: string, address: string, status: 'delivered' | 'read', upTo: bigint): Promise<{ before: bigint; after: bigint; at: Date } | null> {
    const column = status === 'read' ? 'read_upto' : 'delivered_upto';
    const rows = await this.conn.run<{ before: string; after: string; at: Date | string }>(
      `blockrtc_group_advance_${status}`,
      `with cap as (
         select least($3::bigint, coalesce((select max(id) from messages where conversation = 'g:' || $1::uuid::text), 0)) as upto
       ), old as (
         select ${column} as before from group_members where group_id = $1 and address = $2 and state = 'active' for update
       )
       update group_members gm set
         delivered_upto = greatest(gm.delivered_upto, cap.upto)${status === 'read' ? ', read_upto = greatest(gm.read_upto, cap.upto)' : ''}
       from cap, old
       where gm.group_id = $1 and gm.address = $2 and gm.state = 'active'
       returning old.before::text as before, gm.${column}::text as after, now() as at`,
      [groupId, address, upTo.toString()],
    );
    const r = rows[0];
    return r ? { before: BigInt(r.before), after: BigInt(r.after), at: toDate(r.at) } : null;
  }

  /** Others who sent messages in (after, upTo] (the newest rows of the range only). */
  async sendersBetween(groupId: string, except: string, after: bigint, upTo: bigint): Promise<string[]> {
    const rows = await this.conn.run<{ sender: string }>(
      'blockrtc_group_senders',
      `select distinct sender from (
         select sender from messages where conversation = $1 and id > $2::bigint and id <= $3::bigint and kind <> 'system'
         order by id desc limit ${RECEIPT_SCAN}) x
       where sender <> $4`,
      [groupConversation(groupId), after.toString(), upTo.toString(), except],
    );
    return rows.map((r) => r.sender);
  }

  /**
   * Receipt counts per message from the members' cursors: who could receive it (joined at
   * or before it and not removed before it, the sender excepted), and how many of those have
   * their delivered/read cursor at or past it.
   */
  async receipts(
    groupId: string,
    ids: bigint[],
    details: boolean,
  ): Promise<{ id: bigint; of: number; delivered: number; read: number; deliveredBy: string[] | null; readBy: string[] | null }[]> {
    const rows = await this.conn.run<{ id: string; of: number; delivered: number; read: number; delivered_by: string[] | null; read_by: string[] | null }>(
      `blockrtc_group_receipts_${details ? 'details' : 'counts'}`,
      `select m.id::text as id,
         count(gm.address)::int as of,
         count(gm.address) filter (where gm.delivered_upto >= m.id)::int as delivered,
         count(gm.address) filter (where gm.read_upto >= m.id)::int as read,
         ${details ? `coalesce(array_agg(gm.address order by gm.address) filter (where gm.delivered_upto >= m.id), '{}')` : 'null::text[]'} as delivered_by,
         ${details ? `coalesce(array_agg(gm.address order by gm.address) filter (where gm.read_upto >= m.id), '{}')` : 'null::text[]'} as read_by
       from messages m
       left join group_members gm on gm.group_id = $1 and gm.joined_from <= m.id and (gm.visible_until is null or gm.visible_until >= m.id) and gm.address <> m.sender
       where m.conversation = 'g:' || $1::uuid::text and m.id = any($2::bigint[])
       group by m.id
       order by m.id`,
      [groupId, ids.map(String)],
    );
    return rows.map((r) => ({ id: BigInt(r.id), of: r.of, delivered: r.delivered, read: r.read, deliveredBy: r.delivered_by, readBy: r.read_by }));
  }

  /** The attachment is in a message of the group within `address`'s visible range. */
  async canSeeAttachment(attachmentId: string, groupId: string, address: string): Promise<boolean> {
    const rows = await this.conn.run<{ ok: number }>(
      'blockrtc_group_attachment_visible',
      `select 1 as ok from messages m
       join group_members gm on gm.group_id = $2 and gm.address = $3
       where m.attachment_id = $1 and m.conversation = 'g:' || $2::uuid::text
         and gm.joined_from is not null and m.id >= gm.joined_from and (gm.visible_until is null or m.id <= gm.visible_until)
       limit 1`,
      [attachmentId, groupId, address],
    );
    return rows.length > 0;
  }

  /** Which of `peers` accepted `owner` as a contact: they added it, or wrote to it (shares_presence on their row). */
  async acceptedBy(owner: string, peers: string[]): Promise<Set<string>> {
    if (peers.length === 0) return new Set();
    const rows = await this.conn.run<{ owner: string }>(
      'blockrtc_group_accepted_by',
      `select owner from contacts where peer = $1 and owner = any($2::text[]) and shares_presence`,
      [owner, peers],
    );
    return new Set(rows.map((r) => r.owner));
  }
}

