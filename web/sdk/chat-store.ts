/**
 * The messages this device knows, per conversation, in server order (pending ones last), and
 * found by server id or (for my own) by client id. Every change goes through update(), which
 * keeps the order and reports the change.
 */
import type { GroupMessageKind, GroupSystem } from '../../protocol/index.ts';
import type { ReceiptSummary } from './group-receipts.ts';

/** queued: waiting for a connection; sending: on the wire; sent: stored by the server. */
export type DeliveryStatus = 'queued' | 'sending' | 'sent' | 'delivered' | 'read' | 'failed';

export interface ChatEntry {
  /** Server id; null until the server has stored it. */
  id: string | null;
  clientId: string;
  /** The conversation: the other party's address, or `g:<group id>` for a group. */
  peer: string;
  /** The group's id for a group message, else null. */
  group: string | null;
  from: string;
  /** The recipient's address, or the group's conversation key. */
  to: string;
  outgoing: boolean;
  /** `system` only in groups: a membership or details change (see `system`). */
  kind: GroupMessageKind;
  text: string | null;
  /** What a group's system message records. */
  system: GroupSystem | null;
  /**
   * My own group messages: how many members it reached and read (`status` turns delivered or
   * read once all of them have). Null until the server has been asked.
   */
  receipts: ReceiptSummary | null;
  attachment: { id: string; mime: string; size: number } | null;
  createdAt: string;
  status: DeliveryStatus;
  deliveredAt: string | null;
  readAt: string | null;
  error?: string;
}

export class ConversationStore {
  private readonly byId = new Map<string, ChatEntry>();
  private readonly byClientId = new Map<string, ChatEntry>();
  private readonly conversations = new Map<string, ChatEntry[]>();

  constructor(private readonly changed: (entry: ChatEntry) => void) {}

  /** One conversation, oldest first (the key already in its one spelling). */
  list(key: string): ChatEntry[] {
    return this.conversations.get(key) ?? [];
  }

  get(id: string): ChatEntry | undefined {
    return this.byId.get(id);
  }

  /** One of my messages by the id my client chose. */
  mine(clientId: string): ChatEntry | undefined {
    return this.byClientId.get(clientId);
  }

  /** The server named an entry (an ack, or a copy that matched by client id). */
  link(id: string, entry: ChatEntry): void {
    this.byId.set(id, entry);
  }

  add(entry: ChatEntry): void {
    if (entry.id) this.byId.set(entry.id, entry);
    if (entry.outgoing) this.byClientId.set(entry.clientId, entry);
    let list = this.conversations.get(entry.peer);
    if (!list) this.conversations.set(entry.peer, (list = []));
    list.push(entry);
    list.sort(compareEntries);
  }

  update(entry: ChatEntry, patch: Partial<ChatEntry>): void {
    Object.assign(entry, patch);
    this.conversations.get(entry.peer)?.sort(compareEntries);
    this.changed(entry);
  }

  clear(): void {
    this.byId.clear();
    this.byClientId.clear();
    this.conversations.clear();
  }
}

function compareEntries(a: ChatEntry, b: ChatEntry): number {
  // Stored messages order by id (arrival order on the server); pending ones go last.
  if (a.id && b.id) return BigInt(a.id) < BigInt(b.id) ? -1 : BigInt(a.id) > BigInt(b.id) ? 1 : 0;
  if (a.id && !b.id) return -1;
  if (!a.id && b.id) return 1;
  return a.createdAt.localeCompare(b.createdAt);
}
