import { randomUUID } from 'node:crypto';
import type { ChatMessage } from '../protocol/index.ts';
import { RequestError, TestClient } from './client.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Sent {
  clientId: string;
  to: string;
  text: string;
  enqueuedAt: number;
  ackedAt: number | null;
  id: string | null;
  /** A permanent refusal (anything but UNAVAILABLE, RATE_LIMITED, a timeout or a disconnect). */
  error: string | null;
}

export interface Received {
  id: string;
  from: string;
  clientId: string;
  at: number;
  /** Pushed as `chat.message` (true) or fetched by `chat.sync` (false). */
  live: boolean;
}

/**
 * A chat user that behaves like the browser SDK: an outbox sent in order, retried with the
 * same client id after a disconnect, a timeout, `UNAVAILABLE` or `RATE_LIMITED`; reconnects
 * by itself (to whichever node `pickUrl` names, as a load balancer would); `chat.sync` from
 * its cursor after every connect and on `session.resync`; delivered receipts in batches.
 */
export class ChatPeer {
  conn: TestClient | null = null;
  url: string | null = null;
  readonly sent: Sent[] = [];
  readonly received = new Map<string, Received>();
  readonly closes: { url: string; code: number; at: number }[] = [];
  readonly connectedAt: number[] = [];
  /** Requests that got no answer in time, and sends answered with a retryable error. */
  readonly timeouts: { type: string; at: number }[] = [];
  readonly retries: { code: string; at: number }[] = [];
  cursor: string | null = null;
  private outbox: Sent[] = [];
  private stopped = false;
  private flushing = false;
  private flushAgain = false;
  private syncing: Promise<void> | null = null;
  private syncAgain = false;
  private readonly toAck = new Map<string, Set<string>>();
  private ackTimer: NodeJS.Timeout | null = null;
  private genTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly address: string,
    readonly token: string,
    private readonly pickUrl: (avoid: string | null) => string | null,
  ) {}

  /** Connects to `url` first (or wherever `pickUrl` says). */
  async start(url: string | null = null): Promise<void> {
    this.ackTimer = setInterval(() => void this.flushAcks(), 250);
    await this.connectLoop(null, url);
  }

  /** Queues one text message every `everyMs` to the given peers in turn. */
  generate(peers: string[], everyMs: number, marker: string): void {
    let n = 0;
    this.genTimer = setInterval(() => {
      const to = peers[n % peers.length]!;
      this.enqueue(to, `${marker}${this.address.slice(2, 8)}-${n++}`);
    }, everyMs);
  }

  stopGenerating(): void {
    if (this.genTimer) clearInterval(this.genTimer);
    this.genTimer = null;
  }

  enqueue(to: string, text: string): Sent {
    const s: Sent = { clientId: randomUUID(), to, text, enqueuedAt: Date.now(), ackedAt: null, id: null, error: null };
    this.sent.push(s);
    this.outbox.push(s);
    void this.flush();
    return s;
  }

  get pending(): number {
    return this.outbox.length;
  }

  /** Waits until the outbox is empty, then syncs once more. */
  async settle(timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (this.outbox.length > 0 && Date.now() < until) await sleep(50);
    while (!this.conn && Date.now() < until) await sleep(50);
    await this.sync();
    await this.flushAcks();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopGenerating();
    if (this.ackTimer) clearInterval(this.ackTimer);
    await this.conn?.close();
  }

  private async connectLoop(avoid: string | null, first: string | null = null): Promise<void> {
    let delay = 100;
    let url = first;
    while (!this.stopped) {
      url ??= this.pickUrl(avoid);
      if (url) {
        try {
          const c = await TestClient.connect(url, this.token, this.address);
          this.attach(c, url);
          return;
        } catch {
          // Refused or not listening: another try, perhaps elsewhere.
        }
      }
      url = null;
      await sleep(delay * (0.5 + Math.random()));
      delay = Math.min(delay * 2, 1000);
    }
  }

  private attach(c: TestClient, url: string): void {
    this.conn = c;
    this.url = url;
    this.connectedAt.push(Date.now());
    for (const e of c.events) this.onEvent(e.ev, e.data);
    c.listeners.push((ev, data) => this.onEvent(ev, data));
    void c.closed.then((code) => {
      this.closes.push({ url, code, at: Date.now() });
      if (this.conn === c) this.conn = null;
      if (!this.stopped) void this.connectLoop(url);
    });
    void this.sync().then(() => this.flush());
  }

  private onEvent(ev: string, data: unknown): void {
    if (ev === 'chat.message') this.ingest(data as ChatMessage, true);
    else if (ev === 'session.resync') void this.sync();
  }

  private ingest(m: ChatMessage, live: boolean): void {
    if (m.to !== this.address || this.received.has(m.id)) return;
    this.received.set(m.id, { id: m.id, from: m.from, clientId: m.clientId, at: Date.now(), live });
    let ids = this.toAck.get(m.from);
    if (!ids) this.toAck.set(m.from, (ids = new Set()));
    ids.add(m.id);
  }

  sync(): Promise<void> {
    if (this.syncing) {
      this.syncAgain = true;
      return this.syncing;
    }
    this.syncing = (async () => {
      try {
        for (let round = 0; round < 100; round++) {
          const c = this.conn;
          if (!c || c.closeCode !== null) return;
          const r = await c.request('chat.sync', { limit: 200, ...(this.cursor ? { after: this.cursor } : {}) }, 5000);
          for (const m of r.messages) this.ingest(m, false);
          if (r.cursor) this.cursor = r.cursor;
          if (!r.more) break;
        }
      } catch (err) {
        // UNAVAILABLE or a timeout: again shortly. A disconnect: the next connection syncs.
        if (!(err instanceof Error && /^closed/.test(err.message))) {
          if (!(err instanceof RequestError)) this.timeouts.push({ type: 'chat.sync', at: Date.now() });
          const wait = err instanceof RequestError ? (err.body.retryAfterMs ?? 500) : 200;
          setTimeout(() => void this.sync(), wait);
        }
      } finally {
        this.syncing = null;
      }
      if (this.syncAgain) {
        this.syncAgain = false;
        await this.sync();
      }
    })();
    return this.syncing;
  }

  private async flush(): Promise<void> {
    if (this.flushing) {
      this.flushAgain = true;
      return;
    }
    this.flushing = true;
    try {
      while (this.outbox.length > 0) {
        const c = this.conn;
        if (!c || c.closeCode !== null) return;
        const item = this.outbox[0]!;
        try {
          const r = await c.request('chat.send', { to: item.to, clientId: item.clientId, kind: 'text', text: item.text }, 5000);
          item.ackedAt = Date.now();
          item.id = r.id;
          this.outbox.shift();
        } catch (err) {
          if (err instanceof RequestError) {
            const code = err.body.code;
            if (code === 'UNAVAILABLE' || code === 'RATE_LIMITED' || code === 'DRAINING' || code === 'INTERNAL') {
              this.retries.push({ code, at: Date.now() });
              setTimeout(() => void this.flush(), err.body.retryAfterMs ?? 1000);
              return;
            }
            item.error = code;
            this.outbox.shift();
            continue;
          }
          // Timed out or disconnected: the same client id again, on this or the next connection.
          if (/timed out/.test((err as Error).message)) {
            this.timeouts.push({ type: 'chat.send', at: Date.now() });
            continue;
          }
          if (this.conn && this.conn !== c) continue;
          return;
        }
      }
    } finally {
      this.flushing = false;
      if (this.flushAgain) {
        this.flushAgain = false;
        void this.flush();
      }
    }
  }

  private async flushAcks(): Promise<void> {
    const c = this.conn;
    if (!c || c.closeCode !== null || this.toAck.size === 0) return;
    const batch = [...this.toAck.entries()];
    this.toAck.clear();
    await Promise.all(
      batch.map(async ([peer, set]) => {
        const ids = [...set].slice(0, 500);
        try {
          await c.request('chat.delivered', { peer, ids }, 5000);
          for (const id of [...set].slice(500)) this.requeueAck(peer, id);
        } catch {
          for (const id of set) this.requeueAck(peer, id);
        }
      }),
    );
  }

  private requeueAck(peer: string, id: string): void {
    let ids = this.toAck.get(peer);
    if (!ids) this.toAck.set(peer, (ids = new Set()));
    ids.add(id);
  }
}
