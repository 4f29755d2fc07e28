/**
 * The chat mix of one worker. Each user sends to its partner (both are users of this
 * worker, so the send time written into the text is read on the same clock), marks what
 * arrives delivered at once and read now and then (as the SDK does), types, and — with
 * churn — disconnects, comes back and catches up with `chat.sync`. Messages of other runs
 * (older tests with the same seed) are recognised by the run id in the text and ignored.
 */
import type { ChatMessage, EventMap } from '../protocol/index.ts';
import type { MixSettings } from './ipc.ts';
import { counters, countError, hists, nowMs, recordDelivery } from './state.ts';
import type { User, Users } from './users.ts';

const PREFIX = 'lt|';

export class ChatMix {
  private readonly timers: NodeJS.Timeout[] = [];
  private sending = false;
  private seq = 0;
  /** Message ids seen per receiving user (dedupe of live delivery and sync). */
  private readonly seen = new Map<User, Set<string>>();
  private readonly everConnected = new Set<User>();
  private readonly pad: string;

  constructor(
    private readonly users: Users,
    private readonly mix: MixSettings,
    private readonly run: string,
  ) {
    this.pad = 'x'.repeat(Math.max(0, mix.textBytes - 40));
    for (const u of users.list) {
      this.seen.set(u, new Set());
      if (u.conn) this.everConnected.add(u);
      u.handlers['chat.message'] = (user, m) => this.onMessage(user, m, true);
      u.handlers['chat.receipt'] = (_user, r) => this.onReceipt(r);
      u.handlers['chat.typing'] = () => counters.typingReceived++;
    }
    users.onConnected = (u) => {
      if (this.everConnected.has(u)) void this.sync(u);
      else this.everConnected.add(u);
    };
  }

  /**
   * Every user adds its partner, as people do with whom they chat: until then a partner's
   * first messages would be a message request, whose receipts and typing the server keeps
   * from the sender.
   */
  async acceptPartners(): Promise<void> {
    await Promise.all(
      this.users.list.map((u) => u.conn?.request('contacts.add', { address: u.partner.address }).catch((err: unknown) => countError('contacts.add', err))),
    );
  }

  /** Starts every user's timers, each at a random phase so the load is even. */
  start(): void {
    this.sending = true;
    const every = (perMin: number, fn: (u: User) => void, users: User[]) => {
      if (perMin <= 0) return;
      const period = 60_000 / perMin;
      for (const u of users) {
        const t = setTimeout(() => {
          fn(u);
          this.timers.push(setInterval(() => fn(u), period));
        }, Math.random() * period);
        this.timers.push(t);
      }
    };
    every(this.mix.msgsPerMin, (u) => this.send(u), this.users.list);
    every(this.mix.typingPerMin, (u) => this.typing(u), this.users.list);
    every(this.mix.readsPerMin, (u) => this.read(u), this.users.list);
    every(this.mix.churnPerMin, (u) => void this.churn(u), this.users.list.filter((u) => !u.inCall));
  }

  /** Stops sending, then waits (bounded) for answers and deliveries to catch up. */
  async stop(graceMs: number): Promise<void> {
    this.sending = false;
    for (const t of this.timers) clearTimeout(t);
    for (const { timer, send } of [...this.typingStops.values()]) {
      clearTimeout(timer);
      send();
    }
    const until = nowMs() + graceMs;
    const settled = () =>
      counters.chatAcked + counters.chatFailed >= counters.chatSent &&
      counters.chatDelivered >= counters.chatAcked &&
      this.batch.size === 0 &&
      this.typingAnswered >= counters.typingSent &&
      this.syncing === 0 &&
      counters.receiptAcked + counters.receiptFailed + counters.receiptInterrupted >= counters.receiptDeliveredSent + counters.receiptReadSent &&
      this.users.list.every((u) => u.away === false);
    while (!settled() && nowMs() < until) await new Promise((r) => setTimeout(r, 50));
    // Receipt events reach the senders after the receipts were answered. With churn a sender
    // may have been away when its receipt went out, so then only a short wait.
    const reported = () => counters.receiptDeliveredIdsReceived >= counters.chatDelivered;
    const receiptsUntil = nowMs() + (this.mix.churnPerMin > 0 ? 300 : 5000);
    while (!reported() && nowMs() < receiptsUntil) await new Promise((r) => setTimeout(r, 50));
  }

  private send(u: User): void {
    const conn = u.conn;
    if (!this.sending || !conn || u.away) return;
    const n = ++this.seq;
    const at = nowMs();
    counters.chatSent++;
    conn
      .request('chat.send', { to: u.partner.address, clientId: `lt-${this.run}-${u.index}-${n}`, kind: 'text', text: `${PREFIX}${this.run}|${at.toFixed(3)}|${this.pad}` })
      .then(
        () => {
          counters.chatAcked++;
          hists.ackMs.add(nowMs() - at);
        },
        (err: unknown) => {
          counters.chatFailed++;
          countError('chat.send', err);
        },
      );
  }

  private onMessage(u: User, m: ChatMessage, live: boolean): void {
    if (!u.cursor || BigInt(m.id) > BigInt(u.cursor)) u.cursor = m.id;
    const text = m.text ?? '';
    if (!text.startsWith(PREFIX)) return;
    const a = PREFIX.length;
    const b = text.indexOf('|', a);
    if (text.slice(a, b) !== this.run) return;
    const seen = this.seen.get(u)!;
    if (seen.has(m.id)) {
      // Sync returns messages whose delivered receipt did not get through: acknowledge again.
      if (live) counters.chatDuplicates++;
      else this.delivered(u, m.from, m.id);
      return;
    }
    seen.add(m.id);
    counters.chatDelivered++;
    if (live) {
      counters.chatDeliveredLive++;
      recordDelivery(nowMs() - Number(text.slice(b + 1, text.indexOf('|', b + 1))));
    } else counters.chatDeliveredBySync++;
    u.unreadUpTo = m.id;
    this.delivered(u, m.from, m.id);
  }

  /** Delivered receipts leave once per tick per recipient, for every id that arrived in it. */
  private readonly batch = new Map<User, { peer: string; ids: string[] }>();
  private delivered(u: User, peer: string, id: string): void {
    const b = this.batch.get(u);
    if (b) return void b.ids.push(id);
    this.batch.set(u, { peer, ids: [id] });
    setImmediate(() => {
      const cur = this.batch.get(u)!;
      this.batch.delete(u);
      if (!u.conn) return;
      counters.receiptDeliveredSent++;
      u.conn.request('chat.delivered', { peer: cur.peer, ids: cur.ids.slice(0, 500) }).then(
        () => counters.receiptAcked++,
        (err: unknown) => {
          // Cut off by a planned disconnect: the next sync returns these messages again.
          if (u.away && (err as { code?: string }).code === 'CONNECTION_CLOSED') return void counters.receiptInterrupted++;
          counters.receiptFailed++;
          countError('chat.delivered', err);
        },
      );
    });
  }

  private onReceipt(r: EventMap['chat.receipt']): void {
    if (r.status === 'delivered') counters.receiptDeliveredIdsReceived += r.ids.length;
    else counters.receiptReadEventsReceived++;
  }

  private read(u: User): void {
    const upTo = u.unreadUpTo;
    if (!this.sending || !upTo || !u.conn || u.away) return;
    u.unreadUpTo = null;
    counters.receiptReadSent++;
    u.conn.request('chat.read', { peer: u.partner.address, upTo }).then(
      () => counters.receiptAcked++,
      (err: unknown) => {
        counters.receiptFailed++;
        countError('chat.read', err);
      },
    );
  }

  /** Typing stops still to send, by user (sent at once when the mix stops). */
  private readonly typingStops = new Map<User, { timer: NodeJS.Timeout; send: () => void }>();
  private typingAnswered = 0;

  private typing(u: User): void {
    const conn = u.conn;
    if (!this.sending || !conn || u.away || this.typingStops.has(u)) return;
    const req = (typing: boolean) => {
      counters.typingSent++;
      conn
        .request('chat.typing', { to: u.partner.address, typing })
        .catch((err: unknown) => countError('chat.typing', err))
        .finally(() => this.typingAnswered++);
    };
    req(true);
    const send = () => {
      this.typingStops.delete(u);
      if (conn.open) req(false);
    };
    this.typingStops.set(u, { timer: setTimeout(send, 1000), send });
  }

  /** Presence churn: finish what is in flight, close, come back 0.5–1.5 s later, catch up. */
  private async churn(u: User): Promise<void> {
    const conn = u.conn;
    if (!this.sending || !conn || u.away || u.inCall) return;
    u.away = true;
    const until = nowMs() + 5000;
    while (conn.inflight > 0 && nowMs() < until) await new Promise((r) => setTimeout(r, 20));
    counters.churnDisconnects++;
    await conn.close();
    await new Promise((r) => setTimeout(r, 500 + Math.random() * 1000));
    await this.users.reopen(u);
    u.away = false;
  }

  /** After a reconnect: everything after the newest id seen (the server adds unacknowledged ones). */
  private syncing = 0;

  private async sync(u: User): Promise<void> {
    this.syncing++;
    try {
      await this.syncPages(u);
    } finally {
      this.syncing--;
    }
  }

  private async syncPages(u: User): Promise<void> {
    let after = u.cursor ?? undefined;
    for (let page = 0; page < 50 && u.conn; page++) {
      try {
        const r = await u.conn.request('chat.sync', after ? { after } : {});
        for (const m of r.messages) if (m.to.toLowerCase() === u.address.toLowerCase()) this.onMessage(u, m, false);
        if (!r.more || !r.cursor) return;
        after = r.cursor;
      } catch (err) {
        countError('chat.sync', err);
        return;
      }
    }
  }
}
