import type { ErrorBody, EventMap, EventType, HelloEvent, RequestInput, RequestType, ResultMap } from '../../protocol/index.ts';
import { BlockRtcClientError } from './errors.ts';
import { Emitter } from './events.ts';

import { BEARER_PROTOCOL_PREFIX, SUBPROTOCOL } from '../../protocol/constants.ts';
import { CLOSE } from '../../protocol/errors.ts';

export { BEARER_PROTOCOL_PREFIX, SUBPROTOCOL };

export type SignalState =
  /** Not started yet. */
  | 'idle'
  | 'connecting'
  | 'open'
  /** Lost the socket; waiting for the next attempt. */
  | 'reconnecting'
  /** No usable token and signing in again is not allowed: the app has to ask the user. */
  | 'auth-required'
  /** Closed by the app, or the reconnect policy gave up. */
  | 'closed';

export interface ReconnectContext {
  /** 1 for the first retry after a loss. */
  attempt: number;
  /** Since the connection was lost. */
  elapsedMs: number;
  closeCode: number | null;
  closeReason: string;
}

/** Decides how long to wait before the next attempt; null stops reconnecting. */
export interface ReconnectPolicy {
  nextRetryDelayInMs(ctx: ReconnectContext): number | null;
}

export interface BackoffOptions {
  initialDelayMs?: number;
  maxDelayMs?: number;
  multiplier?: number;
  /** 0..1: the share of each delay that is randomised, so clients of a dead node do not return in lockstep. */
  jitter?: number;
  maxAttempts?: number;
  maxElapsedMs?: number;
}

export class ExponentialBackoffPolicy implements ReconnectPolicy {
  private readonly o: Required<BackoffOptions>;
  constructor(options: BackoffOptions = {}) {
    this.o = {
      initialDelayMs: options.initialDelayMs ?? 300,
      maxDelayMs: options.maxDelayMs ?? 15_000,
      multiplier: options.multiplier ?? 2,
      jitter: options.jitter ?? 0.4,
      maxAttempts: options.maxAttempts ?? Number.POSITIVE_INFINITY,
      maxElapsedMs: options.maxElapsedMs ?? Number.POSITIVE_INFINITY,
    };
  }

  nextRetryDelayInMs(ctx: ReconnectContext): number | null {
    if (ctx.attempt > this.o.maxAttempts || ctx.elapsedMs > this.o.maxElapsedMs) return null;
    const base = Math.min(this.o.maxDelayMs, this.o.initialDelayMs * this.o.multiplier ** (ctx.attempt - 1));
    const spread = base * this.o.jitter;
    return Math.max(0, Math.round(base - spread + Math.random() * spread * 2));
  }
}

/** Where SignalClient gets a bearer token before each connection attempt. */
export interface TokenSource {
  /** A token that is valid now, or null when the user has to sign in again. */
  getToken(): Promise<string | null>;
}

export interface SignalClientOptions {
  /** ws(s)://host/ws */
  url: string;
  tokens: TokenSource;
  reconnectPolicy?: ReconnectPolicy;
  requestTimeoutMs?: number;
  /** Time allowed from opening the socket to `session.hello`. */
  connectTimeoutMs?: number;
  /** For tests and non-browser runtimes. */
  WebSocketImpl?: typeof WebSocket;
}

export interface SignalClientEvents extends EventMap {
  'signal.state': { state: SignalState; previous: SignalState };
  /** Every successful (re)connection; `reconnect` is false only for the first one. */
  'signal.open': { hello: HelloEvent; reconnect: boolean };
  'signal.close': { code: number; reason: string };
}

interface Pending {
  resolve(data: unknown): void;
  reject(err: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

export interface RequestOptions {
  timeoutMs?: number;
}

/**
 * One WebSocket to a signaling node: request/response by id with timeouts, typed server
 * events, and automatic reconnection. Requests are not queued while disconnected — they
 * fail with DISCONNECTED so each layer decides what a retry means (chat queues, calls rejoin).
 */
export class SignalClient extends Emitter<SignalClientEvents> {
  private ws: WebSocket | null = null;
  private _state: SignalState = 'idle';
  private readonly pending = new Map<string, Pending>();
  private seq = 0;
  private wanted = false;
  private opens = 0;
  private attempt = 0;
  private lostAt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private lastClose: { code: number | null; reason: string } = { code: null, reason: '' };
  private _hello: HelloEvent | null = null;
  private readonly policy: ReconnectPolicy;
  private readonly WS: typeof WebSocket;

  constructor(private readonly options: SignalClientOptions) {
    super();
    this.policy = options.reconnectPolicy ?? new ExponentialBackoffPolicy();
    this.WS = options.WebSocketImpl ?? globalThis.WebSocket;
    if (typeof globalThis.addEventListener === 'function') {
      // Coming back online is the best moment to retry; skip the rest of the backoff.
      globalThis.addEventListener('online', () => {
        if (this._state === 'reconnecting') this.retryNow();
      });
    }
  }

  get state(): SignalState {
    return this._state;
  }

  /** The last `session.hello` (address, node, limits), null before the first connection. */
  get hello(): HelloEvent | null {
    return this._hello;
  }

  /** Resolves once connected; keeps retrying through the policy; rejects on auth-required or closed. */
  connect(): Promise<HelloEvent> {
    if (this._state === 'open' && this._hello) return Promise.resolve(this._hello);
    this.wanted = true;
    const done = new Promise<HelloEvent>((resolve, reject) => {
      const offOpen = this.once('signal.open', ({ hello }) => {
        offState();
        resolve(hello);
      });
      const offState = this.on('signal.state', ({ state }) => {
        if (state === 'auth-required' || state === 'closed') {
          offOpen();
          offState();
          reject(new BlockRtcClientError(state === 'auth-required' ? 'AUTH_REQUIRED' : 'DISCONNECTED', `connection ${state}`));
        }
      });
    });
    if (this._state === 'idle' || this._state === 'closed' || this._state === 'auth-required') {
      this.attempt = 0;
      void this.open();
    }
    return done;
  }

  /** Stops for good (until connect() is called again). */
  close(): void {
    this.wanted = false;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const ws = this.ws;
    this.ws = null;
    if (ws && ws.readyState <= 1) ws.close(CLOSE.NORMAL, 'client closing');
    this.failPending('connection closed');
    this.setState('closed');
  }

  /** Drops the current socket and reconnects right away (e.g. after a fresh sign-in). */
  reconnect(): void {
    this.wanted = true;
    const ws = this.ws;
    this.ws = null;
    if (ws && ws.readyState <= 1) ws.close(CLOSE.NORMAL, 'reconnecting');
    this.failPending('reconnecting');
    this.attempt = 0;
    this.retryNow();
  }

  request<T extends RequestType>(type: T, payload: RequestInput<T>, opts: RequestOptions = {}): Promise<ResultMap[T]> {
    const ws = this.ws;
    if (!ws || this._state !== 'open') {
      return Promise.reject(new BlockRtcClientError('DISCONNECTED', `${type}: not connected`));
    }
    const id = `r${++this.seq}`;
    const timeoutMs = opts.timeoutMs ?? this.options.requestTimeoutMs ?? 10_000;
    return new Promise<ResultMap[T]>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new BlockRtcClientError('TIMEOUT', `${type} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve: (d) => resolve(d as ResultMap[T]), reject, timer });
      ws.send(JSON.stringify({ ...payload, id, type }));
    });
  }

  private setState(state: SignalState): void {
    if (state === this._state) return;
    const previous = this._state;
    this._state = state;
    this.emit('signal.state', { state, previous });
  }

  private retryNow(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    void this.open();
  }

  private async open(): Promise<void> {
    if (!this.wanted) return;
    this.setState(this.opens === 0 && this.attempt === 0 ? 'connecting' : 'reconnecting');
    let token: string | null;
    try {
      token = await this.options.tokens.getToken();
    } catch {
      token = null;
    }
    if (!this.wanted) return;
    if (!token) {
      this.setState('auth-required');
      return;
    }
    let ws: WebSocket;
    try {
      ws = new this.WS(this.options.url, [SUBPROTOCOL, `${BEARER_PROTOCOL_PREFIX}${token}`]);
    } catch {
      this.scheduleRetry(null, 'socket could not be created');
      return;
    }
    this.ws = ws;
    const helloTimer = setTimeout(() => {
      if (this.ws === ws && this._state !== 'open') ws.close(CLOSE.NO_HELLO, 'no hello');
    }, this.options.connectTimeoutMs ?? 10_000);
    ws.onmessage = (e: MessageEvent) => {
      if (this.ws !== ws || typeof e.data !== 'string') return;
      this.onFrame(e.data, helloTimer);
    };
    ws.onclose = (e: CloseEvent) => {
      clearTimeout(helloTimer);
      if (this.ws !== ws) return;
      this.ws = null;
      this.failPending(`connection lost (${e.code})`);
      this.emit('signal.close', { code: e.code, reason: e.reason });
      this.scheduleRetry(e.code, e.reason);
    };
  }

  private onFrame(text: string, helloTimer: ReturnType<typeof setTimeout>): void {
    let frame: { ev?: EventType; data?: unknown; re?: string | null; ok?: boolean; error?: ErrorBody };
    try {
      frame = JSON.parse(text) as typeof frame;
    } catch {
      return;
    }
    if (frame.ev) {
      if (frame.ev === 'session.hello') {
        clearTimeout(helloTimer);
        this._hello = frame.data as HelloEvent;
        const reconnect = this.opens > 0;
        this.opens++;
        this.attempt = 0;
        this.setState('open');
        this.emit('session.hello', this._hello);
        this.emit('signal.open', { hello: this._hello, reconnect });
        return;
      }
      this.emit(frame.ev, frame.data as SignalClientEvents[typeof frame.ev]);
      return;
    }
    if (frame.re == null) return;
    const p = this.pending.get(frame.re);
    if (!p) return;
    this.pending.delete(frame.re);
    clearTimeout(p.timer);
    if (frame.ok) p.resolve(frame.data);
    else p.reject(new BlockRtcClientError(frame.error?.code ?? 'INTERNAL', frame.error?.message ?? 'request failed', frame.error ?? null));
  }

  private scheduleRetry(code: number | null, reason: string): void {
    if (!this.wanted) {
      this.setState('closed');
      return;
    }
    if (this.attempt === 0) this.lostAt = Date.now();
    this.attempt++;
    this.lastClose = { code, reason };
    const delay = this.policy.nextRetryDelayInMs({ attempt: this.attempt, elapsedMs: Date.now() - this.lostAt, closeCode: code, closeReason: reason });
    if (delay === null) {
      this.wanted = false;
      this.setState('closed');
      return;
    }
    this.setState('reconnecting');
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.open();
    }, delay);
  }

  /** Close code and reason of the last lost connection (diagnostics). */
  get lastCloseInfo(): { code: number | null; reason: string } {
    return this.lastClose;
  }

  private failPending(why: string): void {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new BlockRtcClientError('DISCONNECTED', why));
    }
    this.pending.clear();
  }
}
