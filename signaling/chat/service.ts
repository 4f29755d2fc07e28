import { checksumAddress } from '../address.ts';
import type { Config } from '../../config/config.ts';
import type { AttachmentStore } from '../../db/attachments.ts';
import { conversationKey, type MessageStore, type StoredMessage } from '../../db/messages.ts';
import { BlockRtcError } from '../../protocol/errors.ts';
import type { ChatMessage, GroupMessage, Request, ResultMap } from '../../protocol/index.ts';
import { encodeEvent } from '../../protocol/frames.ts';
import type { Events } from '../events.ts';
import type { Metrics } from '../metrics.ts';
import { enforceLimit } from '../ratelimit/enforce.ts';
import type { RateLimiter } from '../ratelimit/limiter.ts';
import { LogThrottle, type Logger } from '../../infra/logger.ts';
import type { Connection } from '../ws/connection.ts';
import { mayReach, type Relations } from '../requests/relations.ts';
import { toWire } from './mapper.ts';
import type { ReceiptMarks } from './receipts.ts';
import { DB_RETRY_AFTER_MS, isConnectivityError, type GroupCommitWriter } from './writer.ts';

/** A read or update that failed because PostgreSQL is unreachable is a retryable UNAVAILABLE, not INTERNAL. */
async function store<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    if (isConnectivityError(err)) throw new BlockRtcError('UNAVAILABLE', 'The message store is unreachable; try again', { retryAfterMs: DB_RETRY_AFTER_MS });
    throw err;
  }
}

export class ChatService {
  constructor(
    private readonly deps: {
      config: Config;
      messages: MessageStore;
      attachments: AttachmentStore;
      writer: GroupCommitWriter;
      /** Delivered and read marks (batched by ReceiptWriter on a node). */
      receipts: ReceiptMarks;
      events: Events;
      limiter: RateLimiter;
      metrics: Metrics;
      /** Requests and blocks: who may get typing and receipts (see signaling/requests). */
      relations: Relations;
      log?: Logger;
      /** Group messages for `chat.sync {groups: true}` (GroupService.since). */
      groupSync?: (address: string, after: bigint | null, limit: number) => Promise<{ messages: GroupMessage[]; more: boolean; ids: bigint[] }>;
    },
  ) {}

  private readonly limiterWarnings = new LogThrottle();

  /**
   * The per-user message limit, open while its store (Redis) is unreachable: stored
   * messages are what counts, and a Redis outage must not stop chat. Frame-rate limits and
   * CHAT_MAX_PENDING_WRITES still bound each connection and the node.
   */
  private async messageLimit(conn: Connection): Promise<void> {
    const { limiter, metrics, config } = this.deps;
    try {
      await enforceLimit(limiter, metrics, { name: 'msg', metric: 'messages', id: conn.address, rule: config.limits.messages });
    } catch (err) {
      if (err instanceof BlockRtcError) throw err;
      if (this.limiterWarnings.due()) {
        this.deps.log?.warn({ err: (err as Error)?.message ?? String(err) }, 'message rate limit unavailable; sends are not limited per user until it is back');
      }
    }
  }

  async send(conn: Connection, req: Request<'chat.send'>): Promise<ResultMap['chat.send']> {
    const { writer, config, attachments, metrics } = this.deps;
    const to = checksumAddress(req.to);
    if (to === conn.address) throw new BlockRtcError('SELF_MESSAGE');
    await this.messageLimit(conn);
    let attachment: { id: string; mime: string; size: number } | null = null;
    if (req.kind !== 'text') {
      const meta = await store(attachments.meta(req.attachmentId!));
      if (!meta || meta.owner !== conn.address || meta.peer !== to || !meta.mime.startsWith(`${req.kind}/`)) {
        throw new BlockRtcError('ATTACHMENT_INVALID');
      }
      attachment = { id: meta.id, mime: meta.mime, size: meta.size };
    }
    // Overload: refuse rather than queue without bound (latency would grow for everyone);
    // clients retry the same client id after the hint.
    if (writer.pending >= config.limits.pendingWrites) {
      metrics.rateLimited.inc({ limit: 'pending_writes' });
      throw new BlockRtcError('UNAVAILABLE', 'This node is busy storing messages; try again shortly', { retryAfterMs: 1000 });
    }
    const conversation = conversationKey(conn.address, to);
    const row = {
      conversation,
      sender: conn.address,
      recipient: to,
      clientId: req.clientId,
      kind: req.kind,
      body: req.kind === 'text' ? req.text! : null,
      attachmentId: attachment?.id ?? null,
    };
    const outcome = await writer.submit(row);
    if (!outcome.ok) throw new BlockRtcError('IDEMPOTENCY_CONFLICT');
    if (!outcome.duplicate) metrics.messagesIn.inc();
    // A retry is published again: the node that stored the first attempt may have died
    // before publishing it, and receivers drop copies by id. Stored is what counts: if
    // publishing fails, the recipient is told to sync when the bus is back (Events).
    const frame = encodeEvent(
      'chat.message',
      toWire({ ...row, id: outcome.id, createdAt: outcome.createdAt, deliveredAt: null, readAt: null, withheld: false, attachment }),
    );
    // Withheld (the recipient blocked the sender): acknowledged as usual, published only to
    // the sender's other devices, so the sender cannot tell it apart from an offline recipient.
    if (!outcome.withheld) this.deps.events.frame(to, frame, outcome.duplicate ? {} : { sentAt: Date.now() });
    this.deps.events.frame(conn.address, frame, { skip: conn.id });
    this.deps.relations.sent(conn.address, to);
    return { id: outcome.id.toString(), createdAt: outcome.createdAt.toISOString(), conversation, duplicate: outcome.duplicate };
  }

  async history(conn: Connection, req: Request<'chat.history'>): Promise<ResultMap['chat.history']> {
    const conversation = conversationKey(conn.address, checksumAddress(req.peer));
    const rows = await store(this.deps.messages.history(conversation, req.before ? BigInt(req.before) : null, req.limit, conn.address));
    return { messages: await this.asSeenBy(conn.address, rows), before: rows.length === req.limit ? rows[rows.length - 1]!.id.toString() : null };
  }

  async sync(conn: Connection, req: Request<'chat.sync'>): Promise<ResultMap['chat.sync']> {
    const after = req.after ? BigInt(req.after) : null;
    const { messages, more } = await store(this.deps.messages.since(conn.address, after, req.limit));
    if (req.groups && this.deps.groupSync) return this.withGroups(conn.address, after, req.limit, messages, more);
    let cursor = after;
    for (const m of messages) if (cursor === null || m.id > cursor) cursor = m.id;
    return { messages: await this.asSeenBy(conn.address, messages), cursor: cursor?.toString() ?? null, more };
  }

  /**
   * One cursor over 1:1 and group messages (ids are one sequence): the page is the `limit`
   * lowest ids of both pages after the cursor, so nothing between them is skipped.
   */
  private async withGroups(address: string, after: bigint | null, limit: number, direct: StoredMessage[], directMore: boolean): Promise<ResultMap['chat.sync']> {
    const group = await this.deps.groupSync!(address, after, limit);
    const stragglers = after === null ? [] : direct.filter((m) => m.id <= after);
    const fresh = after === null ? direct : direct.filter((m) => m.id > after);
    const ids = [...fresh.map((m) => m.id), ...group.ids].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
    const cut = ids.length > limit ? ids[limit - 1]! : null;
    const keptDirect = cut === null ? fresh : fresh.filter((m) => m.id <= cut);
    const keptGroup = cut === null ? group.messages : group.messages.filter((_, i) => group.ids[i]! <= cut);
    let cursor = after;
    for (const id of [...keptDirect.map((m) => m.id), ...group.ids.slice(0, keptGroup.length)]) if (cursor === null || id > cursor) cursor = id;
    return {
      messages: [...stragglers, ...keptDirect].map(toWire),
      groupMessages: keptGroup,
      cursor: cursor?.toString() ?? null,
      more: directMore || group.more || cut !== null,
    };
  }

  async delivered(conn: Connection, req: Request<'chat.delivered'>): Promise<ResultMap['chat.delivered']> {
    const peer = checksumAddress(req.peer);
    const res = await store(this.deps.receipts.markDelivered(conversationKey(conn.address, peer), conn.address, req.ids.map(BigInt)));
    const ids = res.ids.map(String);
    if (ids.length) await this.receipt(conn, peer, 'delivered', ids, res.at);
    return { updated: ids };
  }

  async read(conn: Connection, req: Request<'chat.read'>): Promise<ResultMap['chat.read']> {
    const peer = checksumAddress(req.peer);
    const res = await store(this.deps.receipts.markRead(conversationKey(conn.address, peer), conn.address, peer, BigInt(req.upTo)));
    const ids = res.ids.map(String);
    if (ids.length) await this.receipt(conn, peer, 'read', ids, res.at);
    return { updated: ids };
  }

  async typing(conn: Connection, req: Request<'chat.typing'>): Promise<ResultMap['chat.typing']> {
    const to = checksumAddress(req.to);
    if (to === conn.address) throw new BlockRtcError('SELF_MESSAGE');
    // Answered the same either way: the typist is not told whether it reached anyone.
    if (mayReach(await store(this.deps.relations.get(conn.address, to)))) this.deps.events.toUser(to, 'chat.typing', { from: conn.address, typing: req.typing });
    return {};
  }

  /**
   * Receipts go to the reader's other devices, and to the sender's once the reader accepted
   * the sender (a request gives the sender nothing) and neither blocked the other.
   */
  private async receipt(conn: Connection, peer: string, status: 'delivered' | 'read', ids: string[], at: Date): Promise<void> {
    const frame = encodeEvent('chat.receipt', { status, by: conn.address, ids, at: at.toISOString() });
    if (mayReach(await store(this.deps.relations.get(conn.address, peer)))) this.deps.events.frame(peer, frame);
    this.deps.events.frame(conn.address, frame, { skip: conn.id });
  }

  /**
   * Messages as `viewer` sees them: on its own messages to a peer that has not accepted it,
   * the delivered and read times are left out (they would be receipts by another road).
   */
  private async asSeenBy(viewer: string, rows: StoredMessage[]): Promise<ChatMessage[]> {
    const peers = new Set<string>();
    for (const m of rows) if (m.sender === viewer && (m.deliveredAt !== null || m.readAt !== null)) peers.add(m.recipient);
    const accepted = peers.size ? await store(this.deps.relations.acceptedBy(viewer, [...peers])) : new Set<string>();
    return rows.map((m) => {
      const wire = toWire(m);
      if (m.sender !== viewer || !peers.has(m.recipient) || accepted.has(m.recipient)) return wire;
      return { ...wire, deliveredAt: null, readAt: null };
    });
  }
}
