import { z } from 'zod';
import { address, messageId } from './common.ts';
import { messageKind, storableString, type MessageKind } from './chat.ts';
import { tokenGate, type TokenGate } from './gates.ts';

/**
 * Group conversations (wire protocol v1, groups revision). Everything is additive to v1:
 * requests `group.*`, events `group.*`, and `chat.sync {groups: true}` for clients that
 * understand group messages (without it, sync answers exactly as before).
 */

const id = z.string().min(1).max(64);
/** A group's id (uuid, lower-cased: it names the group's bus channel); its conversation key is `g:<id>`. */
export const groupId = z
  .string()
  .uuid()
  .transform((v) => v.toLowerCase());

/** Longest member list one request may carry (the configured group limit still applies). */
export const MAX_MEMBERS_PER_REQUEST = 1000;

const name = storableString
  .max(64)
  .refine((v) => v.trim().length > 0, 'a group needs a name');
const description = storableString.max(280);
/** An emoji (at most 16 UTF-16 units, no letters or digits) or a colour `#rrggbb`. */
const picture = z
  .string()
  .max(16)
  .refine((v) => /^#[0-9a-fA-F]{6}$/.test(v) || /^\p{Extended_Pictographic}/u.test(v), 'expected an emoji or a colour #rrggbb')
  .refine((v) => v.startsWith('#') || !/[\p{L}\p{N}\s]/u.test(v), 'an emoji picture holds no letters, digits or spaces');
const members = z.array(address).max(MAX_MEMBERS_PER_REQUEST);
export const groupRole = z.enum(['admin', 'member']);
export type GroupRole = z.infer<typeof groupRole>;

export const groupCreate = z.strictObject({
  type: z.literal('group.create'),
  id,
  name,
  description: description.optional(),
  picture: picture.optional(),
  /** Initial members besides the creator (who is its first admin). */
  members: members.default([]),
  /** A token gate every member must pass (the creator included, checked first). */
  gate: tokenGate.optional(),
});
export const groupGet = z.strictObject({ type: z.literal('group.get'), id, group: groupId });
export const groupList = z.strictObject({ type: z.literal('group.list'), id });
export const groupAddMembers = z.strictObject({ type: z.literal('group.addMembers'), id, group: groupId, members: members.min(1) });
export const groupRemoveMember = z.strictObject({ type: z.literal('group.removeMember'), id, group: groupId, member: address });
export const groupLeave = z.strictObject({ type: z.literal('group.leave'), id, group: groupId });
export const groupUpdate = z
  .strictObject({
    type: z.literal('group.update'),
    id,
    group: groupId,
    name: name.optional(),
    /** null clears it. */
    description: description.nullable().optional(),
    /** null clears it. */
    picture: picture.nullable().optional(),
    /** A token gate (the admin setting it must pass it); null clears it. */
    gate: tokenGate.nullable().optional(),
  })
  .refine((r) => r.name !== undefined || r.description !== undefined || r.picture !== undefined || r.gate !== undefined, {
    message: 'change at least one of name, description, picture, gate',
    path: ['name'],
  });
export const groupSetRole = z.strictObject({ type: z.literal('group.setRole'), id, group: groupId, member: address, role: groupRole });
export const groupAccept = z.strictObject({ type: z.literal('group.accept'), id, group: groupId });
export const groupDecline = z.strictObject({ type: z.literal('group.decline'), id, group: groupId });

export const groupSend = z
  .strictObject({
    type: z.literal('group.send'),
    id,
    group: groupId,
    /** Chosen by the client; a retry with the same id never creates a second message. */
    clientId: z.string().min(8).max(64).regex(/^[A-Za-z0-9_-]+$/),
    kind: messageKind,
    text: storableString.max(8000).optional(),
    attachmentId: z.string().uuid().optional(),
  })
  .superRefine((m, ctx) => {
    if (m.kind === 'text' && (!m.text || m.text.trim() === '')) ctx.addIssue({ code: 'custom', path: ['text'], message: 'text messages need text' });
    if (m.kind === 'text' && m.attachmentId) ctx.addIssue({ code: 'custom', path: ['attachmentId'], message: 'text messages take no attachment' });
    if (m.kind !== 'text' && !m.attachmentId) ctx.addIssue({ code: 'custom', path: ['attachmentId'], message: `${m.kind} messages need an uploaded attachment` });
  });
export const groupHistory = z.strictObject({
  type: z.literal('group.history'),
  id,
  group: groupId,
  before: messageId.optional(),
  limit: z.number().int().min(1).max(200).default(50),
});
/** Moves this member's delivered cursor (never backwards). */
export const groupDelivered = z.strictObject({ type: z.literal('group.delivered'), id, group: groupId, upTo: messageId });
/** Moves this member's read (and delivered) cursor (never backwards). */
export const groupRead = z.strictObject({ type: z.literal('group.read'), id, group: groupId, upTo: messageId });
/** Receipt counts for messages of the group; `details` also names who (at most 10 ids then). */
export const groupReceipts = z
  .strictObject({ type: z.literal('group.receipts'), id, group: groupId, ids: z.array(messageId).min(1).max(100), details: z.boolean().default(false) })
  .refine((r) => !r.details || r.ids.length <= 10, { message: 'details for at most 10 messages at a time', path: ['ids'] });
export const groupTyping = z.strictObject({ type: z.literal('group.typing'), id, group: groupId, typing: z.boolean() });
/** Starts a call to the group: every active member's devices ring; others may join late. */
export const groupCall = z.strictObject({ type: z.literal('group.call'), id, group: groupId, kind: z.enum(['audio', 'video']) });

// ── answers and events ─────────────────────────────────────────────────────

export interface GroupInfo {
  id: string;
  /** `g:<id>`: the conversation key of its messages. */
  conversation: string;
  name: string;
  description: string | null;
  /** An emoji or a colour `#rrggbb`. */
  picture: string | null;
  createdBy: string;
  createdAt: string;
  /** Active members (invitations not accepted yet do not count here). */
  memberCount: number;
  /** The token gate members must pass, or null. */
  gate: TokenGate | null;
  /** The group's call that is running now, if any: members who are not in it may join. */
  activeCall: { callId: string; kind: 'audio' | 'video'; startedBy: string; startedAt: string } | null;
}

export type GroupMemberState = 'active' | 'invited';
export interface GroupMember {
  address: string;
  role: GroupRole;
  state: GroupMemberState;
  addedBy: string;
  /** When the member joined (accepted), or was invited. */
  since: string;
}

/** A row of the conversation list. */
export interface GroupSummary extends GroupInfo {
  role: GroupRole;
  state: GroupMemberState;
  lastMessage: { id: string; from: string; kind: GroupMessageKind; text: string | null; createdAt: string } | null;
  /** Messages from others after my read cursor (capped at 999). */
  unread: number;
  readUpTo: string | null;
}

export type GroupMessageKind = MessageKind | 'system';

/**
 * What a system message records (kind `system`, stored as a row of the conversation).
 * `members` lists whom it is about; `by` is who did it.
 */
export interface GroupSystem {
  action: 'created' | 'added' | 'invited' | 'joined' | 'declined' | 'removed' | 'left' | 'updated' | 'role';
  by: string;
  members?: string[];
  role?: GroupRole;
  name?: string;
  description?: string | null;
  picture?: string | null;
  /** On `updated`: the gate set (null: cleared). */
  gate?: TokenGate | null;
  /** On `removed` by the gate recheck (`by` is the member): why. */
  reason?: 'gate-not-met' | 'chain-unavailable';
}

/** A message of a group conversation (the `group.message` event, `group.history`, sync). */
export interface GroupMessage {
  id: string;
  group: string;
  conversation: string;
  from: string;
  clientId: string;
  kind: GroupMessageKind;
  text: string | null;
  attachment: { id: string; mime: string; size: number } | null;
  /** Set on kind `system`. */
  system: GroupSystem | null;
  createdAt: string;
}

export interface GroupDetail {
  group: GroupInfo;
  members: GroupMember[];
}

export interface GroupReceiptCount {
  id: string;
  /** Members who could receive it (joined before it, not removed before it), the sender excepted. */
  of: number;
  delivered: number;
  read: number;
  /** With `details`: who. */
  deliveredBy?: string[];
  readBy?: string[];
}

/** To the senders of the messages a cursor move covers, and to the member's other devices. */
export interface GroupReceiptEvent {
  group: string;
  status: 'delivered' | 'read';
  by: string;
  /** Every message of the group up to this id is delivered/read by `by`. */
  upTo: string;
  at: string;
}
export interface GroupTypingEvent {
  group: string;
  from: string;
  typing: boolean;
}
/** My own membership changed (to every device of mine). */
export interface GroupMembershipEvent {
  group: GroupInfo;
  state: 'active' | 'invited' | 'removed' | 'left' | 'declined';
  role: GroupRole;
  by: string;
  /** Removed by the token gate recheck: the tokens are gone, or the chain was unreachable past the grace. */
  reason?: 'gate-not-met' | 'chain-unavailable';
}
/** A group call started or ended (to every active member's devices). */
export interface GroupCallEvent {
  group: string;
  callId: string;
  kind: 'audio' | 'video';
  from: string;
  state: 'started' | 'ended';
}

export interface GroupResults {
  'group.create': GroupDetail;
  'group.get': GroupDetail;
  'group.list': { groups: GroupSummary[] };
  'group.addMembers': { added: GroupMember[] };
  'group.removeMember': Record<string, never>;
  'group.leave': Record<string, never>;
  'group.update': { group: GroupInfo };
  'group.setRole': Record<string, never>;
  'group.accept': GroupDetail;
  'group.decline': Record<string, never>;
  'group.send': { id: string; createdAt: string; conversation: string; duplicate: boolean };
  'group.history': { messages: GroupMessage[]; before: string | null };
  'group.delivered': { upTo: string };
  'group.read': { upTo: string };
  'group.receipts': { receipts: GroupReceiptCount[] };
  'group.typing': Record<string, never>;
  'group.call': { callId: string };
}

export interface GroupEvents {
  'group.message': GroupMessage;
  'group.receipt': GroupReceiptEvent;
  'group.typing': GroupTypingEvent;
  'group.membership': GroupMembershipEvent;
  'group.call': GroupCallEvent;
}
