import type { Socket } from 'node:net';
import { WebSocket } from 'ws';
import { CLOSE, type ErrorBody } from '../../protocol/errors.ts';
import { encodeEvent } from '../../protocol/frames.ts';
import type { EventMap, EventType } from '../../protocol/index.ts';

/**
 * Frames written to one connection within a tick (acks of a group commit, a burst from the
 * bus) leave in one write: the socket is corked at its first frame and every corked socket
 * is flushed once the tick's work is done. One list for the process, no closure per socket.
 */
const corked: Connection[] = [];
function uncorkAll(): void {
  for (const c of corked.splice(0)) {
    c.corked = false;
    socketOf(c.ws)?.uncork();
  }
}
function socketOf(ws: WebSocket): Socket | undefined {
  return (ws as unknown as { _socket?: Socket })._socket;
}

/** How long a peer has to answer our close frame before its socket is cut. */
export const CLOSE_GRACE_MS = 1000;

function terminateUnlessClosed(ws: WebSocket): void {
  if (ws.readyState !== WebSocket.CLOSED) ws.terminate();
}

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
  corked = false;

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
    if (!this.corked) {
      const socket = socketOf(this.ws);
      if (socket && !socket.destroyed) {
        socket.cork();
        this.corked = true;
        if (corked.push(this) === 1) process.nextTick(uncorkAll);
      }
    }
    this.ws.send(frame);
  }

  event<E extends EventType>(ev: E, data: EventMap[E]): void {
    this.sendRaw(encodeEvent(ev, data));
  }

  ok<T>(re: string, data: T): void {
    this.sendRaw(JSON.stringify({ re, ok: true, data }));
  }

  fail(re: string | null, error: ErrorBody): void {
    this.sendRaw(JSON.stringify({ re, ok: false, error }));
  }

  /**
   * Sends the close frame; from then on frames from the peer are ignored (the gateway no
   * longer dispatches them). A connection closed for abuse is not read at all any more, so
   * the rest of a flood costs nothing. A peer that does not complete the close within CLOSE_GRACE_MS has
   * its socket cut (a timer only for connections being closed).
   */
  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.ws.close(code, reason.slice(0, 120));
    // The close frame and whatever this tick queued before it (acks of the last commit while
    // draining) leave now: a terminate() later in this tick must not drop them on a corked socket.
    if (this.corked) {
      this.corked = false;
      socketOf(this.ws)?.uncork();
    }
    if (code === CLOSE.POLICY) this.ws.pause();
    setTimeout(terminateUnlessClosed, CLOSE_GRACE_MS, this.ws).unref();
  }
}
