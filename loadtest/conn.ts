/**
 * One user's WebSocket to a signaling node, speaking the wire protocol: requests answered
 * by id, events handed to one listener. Opens from a chosen local address; a refused
 * upgrade rejects with the server's error code (`X-BlockRTC-Error`) or the socket error.
 */
import WebSocket from 'ws';
import { BEARER_PROTOCOL_PREFIX, SUBPROTOCOL, type ErrorBody, type EventMap, type EventType, type HelloEvent, type RequestInput, type RequestType, type ResultMap } from '../protocol/index.ts';

export class RequestFailed extends Error {
  constructor(readonly code: string) {
    super(code);
  }
}

export type EventListener = <E extends EventType>(ev: E, data: EventMap[E]) => void;

interface Frame {
  re?: string | null;
  ok?: boolean;
  data?: unknown;
  error?: ErrorBody;
  ev?: string;
}

export class Conn {
  private readonly pending = new Map<string, { resolve: (d: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private seq = 0;
  onEvent: EventListener | null = null;
  /** Called once when the socket closes (code 1005/1006 when we did not ask). */
  onClose: ((code: number, byUs: boolean) => void) | null = null;
  private closingByUs = false;
  readonly closed: Promise<number>;

  private constructor(
    readonly ws: WebSocket,
    readonly hello: HelloEvent,
  ) {
    ws.on('message', (raw) => this.frame(raw.toString()));
    this.closed = new Promise((resolve) => {
      ws.once('close', (code) => {
        for (const p of this.pending.values()) {
          clearTimeout(p.timer);
          p.reject(new RequestFailed('CONNECTION_CLOSED'));
        }
        this.pending.clear();
        this.onClose?.(code, this.closingByUs);
        resolve(code);
      });
    });
  }

  static open(url: string, token: string, localAddress: string, origin: string | null, timeoutMs: number): Promise<Conn> {
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/ws`, [SUBPROTOCOL, `${BEARER_PROTOCOL_PREFIX}${token}`], {
      perMessageDeflate: false,
      localAddress,
      handshakeTimeout: timeoutMs,
      ...(origin ? { origin } : {}),
    });
    return new Promise((resolve, reject) => {
      let settled = false;
      const finish = (err: string | null, hello?: HelloEvent) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        ws.removeAllListeners();
        ws.on('error', () => undefined); // 'close' follows
        if (err !== null) {
          ws.terminate();
          return reject(new RequestFailed(err));
        }
        resolve(new Conn(ws, hello!));
      };
      const timer = setTimeout(() => finish('HELLO_TIMEOUT'), timeoutMs);
      ws.on('message', (raw) => {
        const f = JSON.parse(raw.toString()) as Frame;
        if (f.ev === 'session.hello') finish(null, f.data as HelloEvent);
      });
      ws.on('unexpected-response', (req, res) => {
        const code = res.headers['x-blockrtc-error'];
        res.resume();
        req.destroy();
        finish(typeof code === 'string' ? code : `HTTP_${res.statusCode}`);
      });
      ws.on('error', (err: NodeJS.ErrnoException) => finish(err.code ?? 'SOCKET_ERROR'));
      ws.on('close', (code) => finish(`CLOSED_${code}`));
    });
  }

  private frame(text: string): void {
    let f: Frame;
    try {
      f = JSON.parse(text) as Frame;
    } catch {
      return;
    }
    if (f.ev) {
      this.onEvent?.(f.ev as EventType, f.data as never);
      return;
    }
    if (typeof f.re !== 'string') return;
    const p = this.pending.get(f.re);
    if (!p) return;
    this.pending.delete(f.re);
    clearTimeout(p.timer);
    if (f.ok) p.resolve(f.data);
    else p.reject(new RequestFailed(f.error?.code ?? 'UNKNOWN'));
  }

  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  get inflight(): number {
    return this.pending.size;
  }

  request<T extends RequestType>(type: T, payload: RequestInput<T>, timeoutMs = 15_000): Promise<ResultMap[T]> {
    if (!this.open) return Promise.reject(new RequestFailed('CONNECTION_CLOSED'));
    const id = String(++this.seq);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new RequestFailed('TIMEOUT'));
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve as (d: unknown) => void, reject, timer });
      this.ws.send(JSON.stringify({ id, type, ...payload }));
    });
  }

  /** A normal close; resolves when the socket is gone (terminated after `timeoutMs`). */
  close(timeoutMs = 2000): Promise<number> {
    this.closingByUs = true;
    if (this.ws.readyState === WebSocket.CLOSED) return this.closed;
    this.ws.close(1000);
    const t = setTimeout(() => this.ws.terminate(), timeoutMs);
    return this.closed.finally(() => clearTimeout(t));
  }
}
