import type { ChatMessage, Contact, GroupReceiptCount, GroupReceiptEvent, MessageKind, ReceiptEvent, UploadResult } from '../../protocol/index.ts';
import { normalize } from './address.ts';
import { ConversationStore, type ChatEntry } from './chat-store.ts';
import { conversationKey, groupConversation, groupOf } from './conversation.ts';
import type { Engine } from './engine.ts';
import { BlockRtcClientError, errorCode } from './errors.ts';
import { Emitter } from './events.ts';
import { GroupChat } from './group-chat.ts';
import { randomId, readJson, writeJson } from './storage.ts';

export type { ChatEntry, DeliveryStatus } from './chat-store.ts';

export interface ChatEvents {
  /** A message appeared in a conversation (new, from history, or synced). */
  message: { entry: ChatEntry; live: boolean };
  /** A known message changed (acked, delivered, read, failed). */
  update: { entry: ChatEntry };
  /** `peer` is the conversation; `from` who types (the peer itself in a 1:1 conversation). */
  typing: { peer: string; from: string; typing: boolean };
  receipt: ReceiptEvent;
  /** A member's delivered/read cursor moved in a group (counts then follow as updates). */
  'group-receipt': GroupReceiptEvent;
  /** A sync round finished after (re)connecting. */
  synced: { count: number };
}

interface OutboxItem {
  clientId: string;
  /** A conversation key (address or `g:<id>`). */
  to: string;
  /** Set for a group message: sent with group.send. */
  group?: string;
  kind: MessageKind;
  text?: string;
  attachmentId?: string;
  attachment?: ChatEntry['attachment'];
  createdAt: string;
}

const TYPING_EXPIRY_MS = 6000;

/**
 * Conversations (1:1 and groups, keyed as in conversation.ts), the outbox and receipts. Every
 * send carries a client-chosen id, so a retry (after a timeout or a reconnect) returns the
 * stored message instead of a duplicate. What only groups need is in group-chat.ts.
 */
export class ChatClient extends Emitter<ChatEvents> {
  private readonly store = new ConversationStore((entry) => this.emit('update', { entry }));
  private readonly groups: GroupChat;
  private readonly historyCursor = new Map<string, string | null>();
  private readonly deliveredQueue = new Map<string, Set<string>>();
  private readonly typingTimers = new Map<string, ReturnType<typeof setTimeout>>();
  private readonly blobUrls = new Map<string, Promise<string>>();
  private outbox: OutboxItem[] = [];
  private flushing = false;
  private deliveredTimer: ReturnType<typeof setTimeout> | null = null;
  private openPeer: string | null = null;
  private syncing: Promise<void> | null = null;
  private resyncAgain = false;

  constructor(private readonly engine: Engine) {
    super();
    const s = engine.signal;
    s.on('signal.open', () => void this.afterConnect());
    s.on('chat.message', (m) => this.ingest(m, true));
    s.on('chat.receipt', (r) => this.onReceipt(r));
    // The server may have lost events for this connection (Redis outage): fetch them.
    s.on('session.resync', () => void this.resync());
    s.on('chat.typing', (t) => this.onTyping(t.from, t.from, t.typing));
    this.groups = new GroupChat({
      store: this.store,
      me: () => this.me(),
      receiptsRequest: (payload) => engine.signal.request('group.receipts', payload),
      added: (entry, live) => this.emit('message', { entry, live }),
      typing: (conversation, from, typing) => this.onTyping(conversation, from, typing),
      isOpen: (conversation) => this.openPeer === conversation,
      markRead: (conversation) => void this.markRead(conversation),
      deliveredSoon: () => this.scheduleDelivered(),
    });
    s.on('group.message', (m) => this.groups.ingest(m, true));
    s.on('group.receipt', (r) => this.onGroupReceipt(r));
    s.on('group.typing', (t) => this.onTyping(groupConversation(t.group), t.from, t.typing));
    engine.on('session', (session) => {
      this.reset();
      if (session) this.outbox = readJson<OutboxItem[]>(engine.storage, this.outboxKey()) ?? [];
    });
  }

  /** Messages of one conversation (an address or `g:<group id>`), oldest first. */
  messages(peer: string): ChatEntry[] {
    return this.store.list(conversationKey(peer));
  }

  /** The conversation on screen: its incoming messages are marked read as they arrive. */
  setOpenConversation(peer: string | null): void {
    this.openPeer = peer ? conversationKey(peer) : null;
    if (this.openPeer) void this.markRead(this.openPeer);
  }

  get openConversation(): string | null {
    return this.openPeer;
  }

  /** To an address or a group (`g:<group id>`, see groupConversation). */
  async sendText(to: string, text: string): Promise<ChatEntry> {
    return this.enqueue({ ...target(to), clientId: newClientId(), kind: 'text', text, createdAt: new Date().toISOString() });
  }

  /** Uploads the recording, then sends it as an audio (or video) message. */
  async sendVoiceNote(to: string, blob: Blob): Promise<ChatEntry> {
    const t = target(to);
    const mime = (blob.type || 'audio/webm').split(';')[0]!;
    const query = t.group ? `group=${encodeURIComponent(t.group)}` : `to=${encodeURIComponent(t.to)}`;
    const res = await this.engine.fetch(`/media?${query}`, { method: 'POST', headers: { 'content-type': mime }, body: blob });
    const up = (await res.json()) as UploadResult;
    const kind: MessageKind = mime.startsWith('video/') ? 'video' : 'audio';
    return this.enqueue({ ...t, clientId: newClientId(), kind, attachmentId: up.id, attachment: { id: up.id, mime: up.mime, size: up.size }, createdAt: new Date().toISOString() });
  }

  /** Older messages of a conversation; returns how many arrived and whether more exist. */
  async loadHistory(peer: string, limit = 50): Promise<{ count: number; more: boolean }> {
    const p = conversationKey(peer);
    const before = this.historyCursor.get(p);
    if (before === null) return { count: 0, more: false };
    const group = groupOf(p);
    let count: number;
    let next: string | null;
    if (group) {
      const res = await this.engine.signal.request('group.history', { group, limit, ...(before ? { before } : {}) });
      for (const m of res.messages) this.groups.ingest(m, false);
      [count, next] = [res.messages.length, res.before];
    } else {
      const res = await this.engine.signal.request('chat.history', { peer: p, limit, ...(before ? { before } : {}) });
      for (const m of res.messages) this.ingest(m, false);
      [count, next] = [res.messages.length, res.before];
    }
    this.historyCursor.set(p, next);
    return { count, more: next !== null };
  }

  /** Who received and read one of my group messages (also refreshes its counts). */
  async receiptDetails(entry: ChatEntry): Promise<GroupReceiptCount | null> {
    if (!entry.group || !entry.id) throw new BlockRtcClientError('INVALID_FIELDS', 'Receipt details exist for stored group messages only');
    return this.groups.details(entry.group, entry.id);
  }

  listContacts(): Promise<Contact[]> {
    return this.engine.signal.request('contacts.list', {}).then((r) => r.contacts);
  }

  addContact(address: string): Promise<Contact> {
    return this.engine.signal.request('contacts.add', { address: normalize(address) }).then((r) => r.contact);
  }

  /** Tells the peer (or the group) we are (not) typing; failures are irrelevant. */
  setTyping(to: string, typing: boolean): void {
    const t = target(to);
    const req = t.group ? this.engine.signal.request('group.typing', { group: t.group, typing }) : this.engine.signal.request('chat.typing', { to: t.to, typing });
    req.catch(() => undefined);
  }

  /** A blob: URL for an attachment, fetched once with the bearer token. */
  attachmentUrl(attachmentId: string): Promise<string> {
    let url = this.blobUrls.get(attachmentId);
    if (!url) {
      url = this.engine
        .fetch(`/media/${attachmentId}`)
        .then((r) => r.blob())
        .then((b) => URL.createObjectURL(b));
      url.catch(() => this.blobUrls.delete(attachmentId));
      this.blobUrls.set(attachmentId, url);
    }
    return url;
  }

  /** Messages still waiting for a connection (sent once reconnected). */
  get pendingCount(): number {
    return this.outbox.length;
  }

  // ── internals ─────────────────────────────────────────────────────────────

  private me(): string {
    return this.engine.address ?? '';
  }

  private outboxKey(): string {
    return `blockrtc.outbox.${this.me()}`;
  }

  private cursorKey(): string {
    return `blockrtc.cursor.${this.me()}`;
  }

  private reset(): void {
    this.store.clear();
    this.historyCursor.clear();
    this.groups.clear();
    this.outbox = [];
  }

  private enqueue(item: OutboxItem): Promise<ChatEntry> {
    const me = this.me();
    const entry: ChatEntry = {
      id: null,
      clientId: item.clientId,
      peer: item.to,
      group: item.group ?? null,
      from: me,
      to: item.to,
      outgoing: true,
      kind: item.kind,
      text: item.text ?? null,
      system: null,
      receipts: null,
      attachment: item.attachment ?? null,
      createdAt: item.createdAt,
      status: 'queued',
      deliveredAt: null,
      readAt: null,
    };
    this.store.add(entry);
    this.emit('message', { entry, live: true });
    this.outbox.push(item);
    this.saveOutbox();
    void this.flush();
    return Promise.resolve(entry);
  }

  private saveOutbox(): void {
    writeJson(this.engine.storage, this.outboxKey(), this.outbox);
  }

  /** Sends queued messages in order; stops at the first connection problem (retried on reconnect). */
  private async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.outbox.length > 0 && this.engine.signal.state === 'open') {
        const item = this.outbox[0]!;
        const entry = this.store.mine(item.clientId);
        if (entry && entry.status === 'queued') this.store.update(entry, { status: 'sending' });
        try {
          const body = {
            clientId: item.clientId,
            kind: item.kind,
            ...(item.text !== undefined ? { text: item.text } : {}),
            ...(item.attachmentId ? { attachmentId: item.attachmentId } : {}),
          };
          const r = item.group ? await this.engine.signal.request('group.send', { group: item.group, ...body }) : await this.engine.signal.request('chat.send', { to: item.to, ...body });
          this.outbox.shift();
          this.saveOutbox();
          const e = this.store.mine(item.clientId);
          if (e) {
            if (e.id === null) this.store.link(r.id, e);
            this.store.update(e, { id: r.id, createdAt: r.createdAt, status: e.status === 'delivered' || e.status === 'read' ? e.status : 'sent' });
            if (item.group) this.groups.sent(item.group, r.id);
          }
        } catch (err) {
          const code = errorCode(err);
          if (code === 'DISCONNECTED' || code === 'TIMEOUT' || code === 'UNAVAILABLE' || code === 'INTERNAL') {
            if (entry && entry.status === 'sending') this.store.update(entry, { status: 'queued' });
            // Same clientId next time, so a send that did land is not duplicated.
            if (code !== 'DISCONNECTED') setTimeout(() => void this.flush(), (err as BlockRtcClientError).retryAfterMs ?? 1000);
            return;
          }
          if (code === 'RATE_LIMITED') {
            setTimeout(() => void this.flush(), (err as BlockRtcClientError).retryAfterMs ?? 1000);
            return;
          }
          this.outbox.shift();
          this.saveOutbox();
          if (entry) this.store.update(entry, { status: 'failed', error: (err as Error).message });
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  private async afterConnect(): Promise<void> {
    await this.sync();
    await this.flush();
    if (this.openPeer) await this.markRead(this.openPeer);
  }

  /** A sync that starts after the request (one already running may have read too early). */
  private async resync(): Promise<void> {
    if (this.syncing) {
      this.resyncAgain = true;
      return;
    }
    await this.sync();
  }

  /** Everything since the stored cursor; duplicates (by id) are ignored. */
  sync(): Promise<void> {
    this.syncing ??= (async () => {
      let count = 0;
      try {
        for (let round = 0; round < 50; round++) {
          const after = this.engine.storage.getItem(this.cursorKey());
          const r = await this.engine.signal.request('chat.sync', { limit: 200, groups: true, ...(after ? { after } : {}) });
          for (const m of r.messages) {
            this.ingest(m, true);
            count++;
          }
          for (const m of r.groupMessages ?? []) {
            this.groups.ingest(m, true);
            count++;
          }
          if (r.cursor) this.engine.storage.setItem(this.cursorKey(), r.cursor);
          if (!r.more) break;
        }
      } catch (err) {
        // Interrupted by a disconnect: the next connection syncs again from the cursor. The
        // server briefly unable to answer (database restarting): again after its hint.
        const code = errorCode(err);
        if (code === 'UNAVAILABLE' || code === 'TIMEOUT' || code === 'INTERNAL') {
          setTimeout(() => void this.sync(), (err as BlockRtcClientError).retryAfterMs ?? 1000);
        }
      } finally {
        this.syncing = null;
      }
      this.emit('synced', { count });
      if (this.resyncAgain) {
        this.resyncAgain = false;
        void this.sync();
      }
    })();
    return this.syncing;
  }

  private ingest(m: ChatMessage, live: boolean): void {
    const me = this.me();
    const outgoing = m.from === me;
    const peer = outgoing ? m.to : m.from;
    const known = this.store.get(m.id) ?? (outgoing ? this.store.mine(m.clientId) : undefined);
    if (known) {
      // Another copy (sync after a live event, or my own send echoed): only merge progress.
      const patch: Partial<ChatEntry> = { id: m.id, createdAt: m.createdAt };
      if (m.deliveredAt && !known.deliveredAt) patch.deliveredAt = m.deliveredAt;
      if (m.readAt && !known.readAt) patch.readAt = m.readAt;
      if (outgoing) patch.status = m.readAt ? 'read' : m.deliveredAt ? 'delivered' : known.status === 'queued' || known.status === 'sending' ? known.status : 'sent';
      this.store.link(m.id, known);
      this.store.update(known, patch);
      return;
    }
    const entry: ChatEntry = {
      id: m.id,
      clientId: m.clientId,
      peer,
      group: null,
      from: m.from,
      to: m.to,
      outgoing,
      kind: m.kind,
      text: m.text,
      system: null,
      receipts: null,
      attachment: m.attachment,
      createdAt: m.createdAt,
      status: outgoing ? (m.readAt ? 'read' : m.deliveredAt ? 'delivered' : 'sent') : m.readAt ? 'read' : m.deliveredAt ? 'delivered' : 'sent',
      deliveredAt: m.deliveredAt,
      readAt: m.readAt,
    };
    this.store.add(entry);
    this.emit('message', { entry, live });
    if (!outgoing) {
      this.onTyping(peer, peer, false);
      if (!m.deliveredAt) this.queueDelivered(peer, m.id);
      if (this.openPeer === peer && !m.readAt) void this.markRead(peer);
    }
  }

  private queueDelivered(peer: string, id: string): void {
    let ids = this.deliveredQueue.get(peer);
    if (!ids) this.deliveredQueue.set(peer, (ids = new Set()));
    ids.add(id);
    this.scheduleDelivered();
  }

  /** Batched: a sync can bring hundreds at once. */
  private scheduleDelivered(): void {
    this.deliveredTimer ??= setTimeout(() => {
      this.deliveredTimer = null;
      const batch = [...this.deliveredQueue];
      this.deliveredQueue.clear();
      for (const [p, set] of batch) {
        const list = [...set];
        for (let i = 0; i < list.length; i += 500) {
          this.engine.signal.request('chat.delivered', { peer: p, ids: list.slice(i, i + 500) }).catch(() => undefined);
        }
      }
      for (const [group, upTo] of this.groups.takeDelivered()) this.engine.signal.request('group.delivered', { group, upTo }).catch(() => undefined);
    }, 30);
  }

  private async markRead(peer: string): Promise<void> {
    if (typeof document !== 'undefined' && document.visibilityState === 'hidden') return;
    const incoming = this.messages(peer).filter((e) => !e.outgoing && e.id !== null);
    const unread = incoming.filter((e) => !e.readAt);
    const last = incoming.at(-1);
    if (!last || unread.length === 0 || this.engine.signal.state !== 'open') return;
    const now = new Date().toISOString();
    for (const e of unread) this.store.update(e, { readAt: now, status: 'read' });
    const group = groupOf(peer);
    try {
      if (group) await this.engine.signal.request('group.read', { group, upTo: last.id! });
      else await this.engine.signal.request('chat.read', { peer, upTo: last.id! });
    } catch {
      // Re-sent on the next connect (the conversation is still open then).
      for (const e of unread) e.readAt = null;
    }
  }

  private onReceipt(r: ReceiptEvent): void {
    for (const id of r.ids) {
      const e = this.store.get(id);
      if (!e || !e.outgoing) continue;
      if (r.status === 'read') this.store.update(e, { readAt: r.at, deliveredAt: e.deliveredAt ?? r.at, status: 'read' });
      else if (e.status !== 'read') this.store.update(e, { deliveredAt: r.at, status: 'delivered' });
    }
    // A read receipt covers everything up to the newest id it names.
    if (r.status === 'read') {
      const newest = r.ids.reduce((a, b) => (BigInt(a) > BigInt(b) ? a : b), '0');
      for (const e of this.messages(r.by)) {
        if (e.outgoing && e.id && BigInt(e.id) <= BigInt(newest) && e.status !== 'read') this.store.update(e, { readAt: r.at, status: 'read' });
      }
    }
    this.emit('receipt', r);
  }

  private onGroupReceipt(r: GroupReceiptEvent): void {
    this.groups.onReceipt(r);
    this.emit('group-receipt', r);
  }

  private onTyping(peer: string, from: string, typing: boolean): void {
    const key = `${peer} ${from}`;
    const old = this.typingTimers.get(key);
    if (old) clearTimeout(old);
    this.typingTimers.delete(key);
    // A lost "stopped typing" must not leave the indicator on forever.
    if (typing) this.typingTimers.set(key, setTimeout(() => this.onTyping(peer, from, false), TYPING_EXPIRY_MS));
    if (typing || old) this.emit('typing', { peer, from, typing });
  }
}

/** Where a send goes: a 1:1 peer, or a group. */
function target(to: string): { to: string; group?: string } {
  const key = conversationKey(to);
  const group = groupOf(key);
  return group ? { to: key, group } : { to: key };
}

function newClientId(): string {
  return `c${randomId(23)}`;
}
