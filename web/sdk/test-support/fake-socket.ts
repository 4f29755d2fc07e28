/**
 * Test double for the browser WebSocket, injected through the SDK's WebSocketImpl option. The
 * test plays the server: open() sends session.hello, reply()/fail() answer a request by id,
 * drop() loses the link. Frames the client sent are kept, parsed, in `sent`.
 */
import type { HelloEvent } from '../../../protocol/index.ts';

export interface SentFrame {
  id: string;
  type: string;
  [key: string]: unknown;
}

export class FakeSocket {
  static instances: FakeSocket[] = [];

  /** Stands in for `typeof WebSocket` (the SDK only constructs it and uses the members below). */
  static get impl(): typeof WebSocket {
    return FakeSocket as unknown as typeof WebSocket;
  }

  static reset(): void {
    FakeSocket.instances = [];
  }

  static get last(): FakeSocket {
    const s = FakeSocket.instances.at(-1);
    if (!s) throw new Error('no socket was opened');
    return s;
  }

  readyState = 0;
  readonly sent: SentFrame[] = [];
  closedWith: { code: number; reason: string } | null = null;
  onmessage: ((e: { data: unknown }) => void) | null = null;
  onclose: ((e: { code: number; reason: string }) => void) | null = null;
  /** Plays the server for every request sent from now on (called after the send returns). */
  responder: ((frame: SentFrame, socket: FakeSocket) => void) | null = null;

  constructor(
    readonly url: string,
    readonly protocols: string[],
  ) {
    FakeSocket.instances.push(this);
  }

  send(data: string): void {
    if (this.readyState !== 1) throw new Error('send on a socket that is not open');
    const frame = JSON.parse(data) as SentFrame;
    this.sent.push(frame);
    const responder = this.responder;
    if (responder) queueMicrotask(() => responder(frame, this));
  }

  /** Client-initiated close: reported asynchronously, like a real socket. */
  close(code = 1000, reason = ''): void {
    this.readyState = 3;
    this.closedWith = { code, reason };
    queueMicrotask(() => this.onclose?.({ code, reason }));
  }

  // ── the server's side ──

  open(hello: Partial<HelloEvent> = {}): void {
    this.readyState = 1;
    this.event('session.hello', { protocol: 1, address: '', node: 'n1', connection: 'c1', tokenExpiresAt: '', limits: { maxPayloadBytes: 65536, messages: { limit: 100, windowMs: 1000 } }, ...hello });
  }

  event(ev: string, data: unknown): void {
    this.raw(JSON.stringify({ ev, data }));
  }

  raw(text: unknown): void {
    this.onmessage?.({ data: text });
  }

  reply(id: string, data: unknown = {}): void {
    this.raw(JSON.stringify({ re: id, ok: true, data }));
  }

  fail(id: string, code: string, message = code, extra: Record<string, unknown> = {}): void {
    this.raw(JSON.stringify({ re: id, ok: false, error: { code, message, ...extra } }));
  }

  /** The link is lost (server gone, network down). */
  drop(code = 1006, reason = ''): void {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }

  /** The last request of that type the client sent. */
  request(type: string): SentFrame {
    const f = this.sent.filter((s) => s.type === type).at(-1);
    if (!f) throw new Error(`no ${type} request was sent (sent: ${this.sent.map((s) => s.type).join(', ') || 'nothing'})`);
    return f;
  }

  requests(type: string): SentFrame[] {
    return this.sent.filter((s) => s.type === type);
  }
}

/** Lets pending promise callbacks (and the SDK's async steps) run. */
export async function settle(rounds = 10): Promise<void> {
  for (let i = 0; i < rounds; i++) await Promise.resolve();
}
