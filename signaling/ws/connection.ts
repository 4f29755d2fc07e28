import type { WebSocket } from 'ws';
import type { ErrorBody } from '../../protocol/errors.ts';

/**
 * One authenticated WebSocket. Kept small on purpose: a node holds tens of thousands,
 * so there are no per-connection timers or closures (housekeeping sweeps them all).
 */
export class Connection {
  /** Set by pong; cleared at each ping round. */
  alive = true;
  /** Frames in the current one-second window, for flood control. */
  frames = 0;
  frameWindow = 0;
  /** Rejected frames in the current strike window; too many closes the socket. */
  strikes = 0;
  strikeWindow = 0;
  closed = false;

  constructor(
    readonly id: string,
    readonly address: string,
    readonly ws: WebSocket,
    /** When the connection's current token expires (ms); pushed forward on refresh. */
    public tokenExpiresAt: number,
    readonly ip: string,
  ) {}

  sendRaw(frame: string): void {
    if (this.closed) return;
    this.ws.send(frame);
  }

  event<T>(ev: string, data: T): void {
    this.sendRaw(JSON.stringify({ ev, data }));
  }

  ok<T>(re: string, data: T): void {
    this.sendRaw(JSON.stringify({ re, ok: true, data }));
  }

  fail(re: string | null, error: ErrorBody): void {
    this.sendRaw(JSON.stringify({ re, ok: false, error }));
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.ws.close(code, reason.slice(0, 120));
  }
}
