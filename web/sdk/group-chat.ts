/**
 * The group half of the chat client: group messages into entries, my delivered cursor per
 * group, receipt counts for my own messages, and what my other devices read. Group messages
 * carry no receipt times: my own get counts from the server (`receipts`, see
 * group-receipts.ts), others' are acknowledged by moving my cursors (one id per group).
 */
import type { GroupMessage, GroupReceiptCount, GroupReceiptEvent, RequestInput, ResultMap } from '../../protocol/index.ts';
import type { ChatEntry, ConversationStore } from './chat-store.ts';
import { groupConversation } from './conversation.ts';
import { GroupReceiptCounter, summaryOf } from './group-receipts.ts';

/** What the chat client lends this part. */
export interface GroupChatHost {
  readonly store: ConversationStore;
  me(): string;
  receiptsRequest(payload: RequestInput<'group.receipts'>): Promise<ResultMap['group.receipts']>;
  /** A new entry (emits `message`). */
  added(entry: ChatEntry, live: boolean): void;
  typing(conversation: string, from: string, typing: boolean): void;
  /** The conversation on screen: incoming messages are read as they arrive. */
  isOpen(conversation: string): boolean;
  markRead(conversation: string): void;
  /** Delivered marks are waiting: send them with the next batch. */
  deliveredSoon(): void;
}

export class GroupChat {
  /** Per group, the newest incoming id to acknowledge (one cursor, not a list of ids). */
  private readonly delivered = new Map<string, string>();
  private readonly counts: GroupReceiptCounter;

  constructor(private readonly host: GroupChatHost) {
    this.counts = new GroupReceiptCounter(
      (payload) => host.receiptsRequest(payload),
      (group, count) => this.applyCount(group, count),
    );
  }

  /** A group message (live, history or sync). */
  ingest(m: GroupMessage, live: boolean): void {
    const { store } = this.host;
    const outgoing = m.from === this.host.me() && m.kind !== 'system';
    const conversation = groupConversation(m.group);
    const known = store.get(m.id) ?? (outgoing ? store.mine(m.clientId) : undefined);
    if (known) {
      store.link(m.id, known);
      if (known.id !== m.id) store.update(known, { id: m.id, createdAt: m.createdAt, status: known.status === 'queued' || known.status === 'sending' ? 'sent' : known.status });
      return;
    }
    const entry: ChatEntry = {
      id: m.id,
      clientId: m.clientId,
      peer: conversation,
      group: m.group,
      from: m.from,
      to: conversation,
      outgoing,
      kind: m.kind,
      text: m.text,
      system: m.system,
      receipts: null,
      attachment: m.attachment,
      createdAt: m.createdAt,
      status: 'sent',
      deliveredAt: null,
      readAt: null,
    };
    store.add(entry);
    this.host.added(entry, live);
    if (outgoing) {
      this.counts.want(m.group, [m.id]);
      return;
    }
    if (m.kind !== 'system') this.host.typing(conversation, m.from, false);
    // My cursors cover system messages too: they are rows of the conversation like any other.
    const prev = this.delivered.get(m.group);
    if (!prev || BigInt(m.id) > BigInt(prev)) this.delivered.set(m.group, m.id);
    this.host.deliveredSoon();
    if (this.host.isOpen(conversation)) this.host.markRead(conversation);
  }

  /** The server stored one of my messages: its counts are asked for soon. */
  sent(group: string, id: string): void {
    this.counts.want(group, [id]);
  }

  /** Who received and read one of my messages (also refreshes its counts). */
  details(group: string, id: string): Promise<GroupReceiptCount | null> {
    return this.counts.details(group, id);
  }

  /** A member's cursor moved: mine (another device read) or someone's my messages wait for. */
  onReceipt(r: GroupReceiptEvent): void {
    const { store } = this.host;
    const upTo = BigInt(r.upTo);
    const list = store.list(groupConversation(r.group));
    if (r.by === this.host.me()) {
      if (r.status !== 'read') return;
      for (const e of list) if (!e.outgoing && e.id && BigInt(e.id) <= upTo && !e.readAt) store.update(e, { readAt: r.at, status: 'read' });
      return;
    }
    const open = list.filter((e) => e.outgoing && e.id && BigInt(e.id) <= upTo && !(e.receipts && e.receipts.of > 0 && e.receipts.read >= e.receipts.of));
    this.counts.want(r.group, open.map((e) => e.id!));
  }

  /** The delivered cursors to send now (a lost one is covered by the next: cursors only move forward). */
  takeDelivered(): [group: string, upTo: string][] {
    const out = [...this.delivered];
    this.delivered.clear();
    return out;
  }

  clear(): void {
    this.delivered.clear();
    this.counts.clear();
  }

  private applyCount(group: string, c: GroupReceiptCount): void {
    const e = this.host.store.get(c.id);
    if (!e || e.group !== group || !e.outgoing) return;
    const all = c.of > 0;
    const status = all && c.read >= c.of ? 'read' : all && c.delivered >= c.of ? 'delivered' : e.status === 'read' || e.status === 'delivered' ? e.status : 'sent';
    this.host.store.update(e, { receipts: summaryOf(c), status });
  }
}
