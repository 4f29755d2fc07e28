import { sql } from 'drizzle-orm';
import { bigserial, bigint, boolean, customType, index, integer, jsonb, pgTable, primaryKey, text, timestamp, unique, uuid } from 'drizzle-orm/pg-core';
import type { TokenGate } from '../protocol/gates.ts';

const bytea = customType<{ data: Buffer; driverData: Buffer | Uint8Array }>({
  dataType: () => 'bytea',
  fromDriver: (v) => (Buffer.isBuffer(v) ? v : Buffer.from(v)),
});

const ts = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

export const users = pgTable('users', {
  /** EIP-55 checksummed address. */
  address: text('address').primaryKey(),
  createdAt: ts('created_at').notNull().defaultNow(),
  lastSignInAt: ts('last_sign_in_at').notNull().defaultNow(),
  lastSeenAt: ts('last_seen_at'),
});

/**
 * Every row carries its conversation key and the hot indexes lead with it, so the table
 * can later be distributed by conversation without a schema change.
 */
export const messages = pgTable(
  'messages',
  {
    id: bigserial('id', { mode: 'bigint' }).notNull(),
    /** The two addresses, sorted and joined with ':'; for a group `g:<group id>`. */
    conversation: text('conversation').notNull(),
    sender: text('sender').notNull(),
    /** The peer; for a group message the conversation key `g:<group id>` (one row per message, not per member). */
    recipient: text('recipient').notNull(),
    clientId: text('client_id').notNull(),
    /** `system`: a group's membership or settings change, described by the JSON in `body`. */
    kind: text('kind', { enum: ['text', 'audio', 'video', 'system'] }).notNull(),
    body: text('body'),
    attachmentId: uuid('attachment_id'),
    createdAt: ts('created_at').notNull().defaultNow(),
    /**
     * 1:1 receipts. Group rows get both at insert: their receipts are per-member cursors
     * (group_members), and being set keeps them out of the partial receipt indexes below.
     */
    deliveredAt: ts('delivered_at'),
    readAt: ts('read_at'),
    /**
     * Not shown to the recipient: sent while the recipient blocked the sender, or part of a
     * request the recipient deleted. The sender still sees it as sent.
     */
    withheld: boolean('withheld').notNull().default(false),
  },
  (t) => [
    primaryKey({ columns: [t.conversation, t.id] }),
    unique('messages_idempotency').on(t.conversation, t.sender, t.clientId),
    index('messages_recipient_id').on(t.recipient, t.id),
    index('messages_sender_id').on(t.sender, t.id),
    index('messages_unread').on(t.conversation, t.recipient, t.id).where(sql`read_at is null`),
    // Withheld rows are never delivered: kept out so they do not pile up in it.
    index('messages_undelivered').on(t.recipient, t.id).where(sql`delivered_at is null and not withheld`),
    // The orphan sweep of attachments asks "does any message refer to it?".
    index('messages_attachment').on(t.attachmentId).where(sql`attachment_id is not null`),
  ],
);

export const attachments = pgTable(
  'attachments',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    owner: text('owner').notNull(),
    /** The only other address that may download it. */
    peer: text('peer').notNull(),
    mime: text('mime').notNull(),
    size: integer('size').notNull(),
    data: bytea('data').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [index('attachments_owner').on(t.owner, t.createdAt), index('attachments_created').on(t.createdAt)],
);

/** One row per (owner, peer): the conversation list and whom presence goes to. */
export const contacts = pgTable(
  'contacts',
  {
    owner: text('owner').notNull(),
    peer: text('peer').notNull(),
    addedAt: ts('added_at').notNull().defaultNow(),
    lastMessageId: bigint('last_message_id', { mode: 'bigint' }),
    lastMessageAt: ts('last_message_at'),
    unread: integer('unread').notNull().default(0),
    /** The owner lets the peer see the owner's presence: set once the owner sends the peer a message or adds the peer. */
    sharesPresence: boolean('shares_presence').notNull().default(false),
  },
  (t) => [primaryKey({ columns: [t.owner, t.peer] }), index('contacts_peer').on(t.peer)],
);

/** `owner` blocked `blocked`: the primary key answers both "is X blocked by Y" and Y's list. */
export const blocks = pgTable(
  'blocks',
  {
    owner: text('owner').notNull(),
    blocked: text('blocked').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.owner, t.blocked] })],
);

export const calls = pgTable(
  'calls',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    kind: text('kind', { enum: ['audio', 'video'] }).notNull(),
    initiator: text('initiator').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
    answeredAt: ts('answered_at'),
    endedAt: ts('ended_at'),
    /** completed | missed | rejected | cancelled | busy | failed */
    endReason: text('end_reason'),
    sfuNode: text('sfu_node'),
    sfuWorker: integer('sfu_worker'),
    /** Set for a call started to a group: its members may join while it runs. */
    groupId: uuid('group_id'),
  },
  (t) => [
    index('calls_open').on(t.createdAt).where(sql`ended_at is null`),
    index('calls_initiator_open').on(t.initiator).where(sql`ended_at is null`),
    index('calls_group_open').on(t.groupId).where(sql`ended_at is null and group_id is not null`),
  ],
);

export const callParticipants = pgTable(
  'call_participants',
  {
    callId: uuid('call_id').notNull(),
    address: text('address').notNull(),
    role: text('role', { enum: ['initiator', 'invitee'] }).notNull(),
    /** ringing | accepted | rejected | missed | busy | joined | left */
    state: text('state').notNull(),
    device: text('device'),
    /** The signaling connection that joined last; a disconnect only counts for that one. */
    session: text('session'),
    invitedAt: ts('invited_at').notNull().defaultNow(),
    answeredAt: ts('answered_at'),
    joinedAt: ts('joined_at'),
    leftAt: ts('left_at'),
  },
  (t) => [
    primaryKey({ columns: [t.callId, t.address] }),
    index('call_participants_address').on(t.address, t.invitedAt),
    index('call_participants_ringing').on(t.invitedAt).where(sql`state = 'ringing'`),
    index('call_participants_joined').on(t.address).where(sql`state = 'joined'`),
  ],
);

/** A group conversation; its messages are rows of `messages` with conversation `g:<id>`. */
export const groups = pgTable('groups', {
  id: uuid('id').primaryKey().defaultRandom(),
  name: text('name').notNull(),
  description: text('description'),
  /** An emoji or a colour `#rrggbb`. */
  picture: text('picture'),
  createdBy: text('created_by').notNull(),
  createdAt: ts('created_at').notNull().defaultNow(),
  /** A token gate (protocol/gates.ts `tokenGate`) members must pass; null: none. */
  gate: jsonb('gate').$type<TokenGate>(),
});

/**
 * One row per (group, address) that was ever invited or added. What a member may see is the
 * id range [joined_from, visible_until] of the group's messages: from its join (system)
 * message to its removal/leave message, open-ended while active. Receipts are two cursors per
 * member, so reading never writes per message.
 */
export const groupMembers = pgTable(
  'group_members',
  {
    groupId: uuid('group_id').notNull(),
    address: text('address').notNull(),
    role: text('role', { enum: ['admin', 'member'] }).notNull(),
    /** active | invited (must accept) | declined | left | removed */
    state: text('state', { enum: ['active', 'invited', 'declined', 'left', 'removed'] }).notNull(),
    addedBy: text('added_by').notNull(),
    /** When the row reached its state (joined, invited, left…). */
    since: ts('since').notNull().defaultNow(),
    joinedFrom: bigint('joined_from', { mode: 'bigint' }),
    visibleUntil: bigint('visible_until', { mode: 'bigint' }),
    deliveredUpTo: bigint('delivered_upto', { mode: 'bigint' }).notNull().default(sql`0`),
    readUpTo: bigint('read_upto', { mode: 'bigint' }).notNull().default(sql`0`),
    /** Last time this member passed the group's token gate (the grace of an outage counts from it). */
    gateVerifiedAt: ts('gate_verified_at'),
  },
  (t) => [
    primaryKey({ columns: [t.groupId, t.address] }),
    index('group_members_address').on(t.address, t.groupId),
    // The periodic gate recheck takes the members checked longest ago, in bounded batches.
    index('group_members_gate_due').on(t.gateVerifiedAt).where(sql`state = 'active' and gate_verified_at is not null`),
  ],
);
