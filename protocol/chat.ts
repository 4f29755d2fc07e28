import { z } from 'zod';
import { address, messageId } from './common.ts';
import type { GroupMessage } from './group.ts';

export const messageKind = z.enum(['text', 'audio', 'video']);

/**
 * Text PostgreSQL can store as it was sent: no U+0000 (a `text` value cannot hold it) and
 * no lone UTF-16 surrogate (it has no UTF-8 form; it would be stored as U+FFFD, so the
 * stored message would differ from the one sent and a retry would look like a conflict).
 */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
export function storableText(s: string): boolean {
  return !s.includes('\u0000') && !LONE_SURROGATE.test(s);
}
export const storableString = z.string().refine(storableText, 'text contains U+0000 or a lone UTF-16 surrogate');
export type MessageKind = z.infer<typeof messageKind>;

export const chatSend = z
  .strictObject({
    type: z.literal('chat.send'),
    id: z.string().min(1).max(64),
    to: address,
    /** Chosen by the client; a retry with the same id never creates a second message. */
    clientId: z.string().min(8).max(64).regex(/^[A-Za-z0-9_-]+$/),
    kind: messageKind,
    text: storableString.max(8000).optional(),
    attachmentId: z.string().uuid().optional(),
  })
  .superRefine((m, ctx) => {
    if (m.kind === 'text' && (!m.text || m.text.trim() === '')) {
      ctx.addIssue({ code: 'custom', path: ['text'], message: 'text messages need text' });
    }
    if (m.kind === 'text' && m.attachmentId) {
      ctx.addIssue({ code: 'custom', path: ['attachmentId'], message: 'text messages take no attachment' });
    }
    if (m.kind !== 'text' && !m.attachmentId) {
      ctx.addIssue({ code: 'custom', path: ['attachmentId'], message: `${m.kind} messages need an uploaded attachment` });
    }
  });

export const chatHistory = z.strictObject({
  type: z.literal('chat.history'),
  id: z.string().min(1).max(64),
  peer: address,
  /** Page towards older messages, starting below this id. */
  before: messageId.optional(),
  limit: z.number().int().min(1).max(200).default(50),
});

export const chatSync = z.strictObject({
  type: z.literal('chat.sync'),
  id: z.string().min(1).max(64),
  /** The newest message id this device has; absent on a device's first sync. */
  after: messageId.optional(),
  limit: z.number().int().min(1).max(500).default(200),
  /** Also return the messages of my groups (`groupMessages`); the cursor then covers both. */
  groups: z.boolean().optional(),
});

export const chatDelivered = z.strictObject({
  type: z.literal('chat.delivered'),
  id: z.string().min(1).max(64),
  peer: address,
  ids: z.array(messageId).min(1).max(500),
});

export const chatRead = z.strictObject({
  type: z.literal('chat.read'),
  id: z.string().min(1).max(64),
  peer: address,
  /** Everything from `peer` up to and including this id is read. */
  upTo: messageId,
});

export const chatTyping = z.strictObject({
  type: z.literal('chat.typing'),
  id: z.string().min(1).max(64),
  to: address,
  typing: z.boolean(),
});

export interface ChatMessage {
  id: string;
  conversation: string;
  from: string;
  to: string;
  clientId: string;
  kind: MessageKind;
  text: string | null;
  attachment: { id: string; mime: string; size: number } | null;
  createdAt: string;
  deliveredAt: string | null;
  readAt: string | null;
}

export interface SendResult {
  id: string;
  createdAt: string;
  conversation: string;
  /** True when this was a retry of an already stored message. */
  duplicate: boolean;
}
export interface HistoryResult {
  messages: ChatMessage[];
  /** Pass as `before` to get older messages; null when there are none. */
  before: string | null;
}
export interface SyncResult {
  messages: ChatMessage[];
  /** Store and pass as `after` next time. */
  cursor: string | null;
  more: boolean;
  /** With `groups: true`: messages of my groups (only those sent while I was a member), oldest first. */
  groupMessages?: GroupMessage[];
}
export interface ReceiptResult {
  updated: string[];
}

export interface ReceiptEvent {
  status: 'delivered' | 'read';
  /** Who delivered/read (the recipient). */
  by: string;
  ids: string[];
  at: string;
}
export interface TypingEvent {
  from: string;
  typing: boolean;
}

/** HTTP: POST /media (raw body, Content-Type audio/* or video/*, ?to=<address>) */
export interface UploadResult {
  id: string;
  mime: string;
  size: number;
}
