import { pino } from 'pino';
import type { WebSocket } from 'ws';
import type { Logger } from '../infra/logger.ts';
import type { Relation } from '../db/blocks.ts';
import type { Relations } from '../signaling/requests/relations.ts';
import { Connection } from '../signaling/ws/connection.ts';

/** A pino logger writing JSON lines into an array, for asserting on what was logged. */
export function captureLog(level: 'trace' | 'debug' | 'info' = 'debug'): { log: Logger; lines: Record<string, unknown>[]; at: (lvl: 'info' | 'warn' | 'error') => Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  const num = { info: 30, warn: 40, error: 50 } as const;
  return { log, lines, at: (lvl) => lines.filter((l) => l.level === num[lvl]) };
}

/**
 * The part of a `ws` socket a Connection touches: frames sent and close calls are recorded;
 * `bufferedAmount` can be set to play a client that stops reading. There is no `_socket`,
 * so Connection never corks.
 */
export class FakeSocket {
  readonly sent: string[] = [];
  readonly closes: { code: number; reason: string; at: number }[] = [];
  bufferedAmount = 0;
  /** The peer answers a close at once (a real client would within the grace period). */
  readyState = 1;
  readonly CLOSED = 3;
  paused = false;
  private readonly onClose: (() => void)[] = [];
  send(frame: string): void {
    this.sent.push(frame);
  }
  close(code: number, reason: string): void {
    this.closes.push({ code, reason, at: Date.now() });
    this.readyState = 3;
    for (const fn of this.onClose.splice(0)) fn();
  }
  once(event: 'close', fn: () => void): void {
    if (event === 'close') this.onClose.push(fn);
  }
  /** Stops reading (a connection closed for abuse). */
  pause(): void {
    this.paused = true;
  }
  terminate(): void {
    this.closes.push({ code: 1006, reason: 'terminated', at: Date.now() });
  }
  /** Sent frames, parsed. */
  frames(): Record<string, unknown>[] {
    return this.sent.map((s) => JSON.parse(s) as Record<string, unknown>);
  }
}

let seq = 0;
/** A real Connection over a FakeSocket. */
export function fakeConnection(address: string, opts: { id?: string; ip?: string; tokenExpiresAt?: number } = {}): { conn: Connection; ws: FakeSocket } {
  const ws = new FakeSocket();
  const conn = new Connection(opts.id ?? `test.${(++seq).toString(36)}`, address, ws as unknown as WebSocket, opts.tokenExpiresAt ?? Date.now() + 900_000, opts.ip ?? '127.0.0.1');
  return { conn, ws };
}

/** Lets pending promise callbacks and one macrotask turn run. */
export const settle = () => new Promise<void>((r) => setImmediate(r));

/** Relations where everyone accepted everyone and nobody blocked anyone (services' unit tests). */
export function openRelations(overrides: Partial<Relation> = {}): Relations & { changes: [string, string][] } {
  const changes: [string, string][] = [];
  return {
    changes,
    get: async () => ({ blockedByPeer: false, blocking: false, accepted: true, ...overrides }),
    sent: () => undefined,
    changed: (actor, peer) => void changes.push([actor, peer]),
    acceptedBy: async (_viewer, owners) => new Set(overrides.accepted === false ? [] : owners),
  };
}
