/**
 * The worker's users: their wallets and tokens (cached or from a fresh SIWE sign-in), their
 * one connection each, opened at the planned rate from their source address, and reopened
 * after a drop or a planned disconnect. Events of a connection go to the user's handlers.
 */
import type { EventMap, EventType } from '../protocol/index.ts';
import { Conn } from './conn.ts';
import type { WorkerPlan } from './ipc.ts';
import { walletFor } from './keys.ts';
import { signIn } from './signin.ts';
import { counters, countError, hists, nowMs } from './state.ts';

export interface User {
  index: number;
  address: string;
  url: string;
  source: string;
  token: string;
  expiresAt: number;
  conn: Conn | null;
  partner: User;
  /** In a call: never disconnected on purpose (media requests belong to the joined connection). */
  inCall: boolean;
  /** Planned disconnect in progress: sends pause. */
  away: boolean;
  /** Newest message id this user has seen (for chat.sync after a reconnect). */
  cursor: string | null;
  /** Newest message id from the partner not yet marked read. */
  unreadUpTo: string | null;
  handlers: Partial<{ [E in EventType]: (u: User, data: EventMap[E]) => void }>;
}

export type TokenListener = (u: User) => void;

export class Users {
  readonly list: User[] = [];
  readonly byIndex = new Map<number, User>();
  /** Mix running: a dropped connection is reopened. */
  live = false;
  onToken: TokenListener = () => undefined;
  onConnected: (u: User) => void = () => undefined;

  constructor(private readonly plan: WorkerPlan) {
    for (const p of plan.users) {
      const u = {
        index: p.index,
        address: p.cached?.address ?? p.address ?? '',
        url: p.url,
        source: p.source,
        token: p.cached?.token ?? '',
        expiresAt: p.cached?.expiresAt ?? 0,
        conn: null,
        inCall: false,
        away: false,
        cursor: null,
        unreadUpTo: null,
        handlers: {},
      } as unknown as User;
      this.list.push(u);
      this.byIndex.set(u.index, u);
    }
    for (let i = 0; i + 1 < this.list.length; i += 2) {
      this.list[i]!.partner = this.list[i + 1]!;
      this.list[i + 1]!.partner = this.list[i]!;
    }
  }

  /** Signs in every user without a usable token, a few at a time. */
  async signInAll(concurrency = 8): Promise<void> {
    const todo: User[] = [];
    for (const u of this.list) {
      if (u.token && u.expiresAt - Date.now() > this.plan.tokenMinValidMs) counters.signInCached++;
      else todo.push(u);
    }
    let next = 0;
    const lane = async () => {
      while (next < todo.length) {
        const u = todo[next++]!;
        await this.signIn(u).catch(() => undefined);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, todo.length) }, lane));
    // Every address is needed (partners, callees) even for users whose sign-in failed.
    for (const u of this.list) if (!u.address) u.address = walletFor(this.plan.seed, u.index).address;
  }

  private async signIn(u: User): Promise<void> {
    const t0 = nowMs();
    try {
      const t = await signIn(u.url, walletFor(this.plan.seed, u.index), u.source, this.plan.origin);
      hists.signInMs.add(nowMs() - t0);
      counters.signInFresh++;
      u.address = t.address;
      u.token = t.token;
      u.expiresAt = Date.parse(t.expiresAt);
      this.onToken(u);
    } catch (err) {
      counters.signInFailed++;
      countError('signIn', err);
      throw err;
    }
  }

  /** Opens every user's connection, `rate` per second from `at` (epoch ms). */
  async connectAll(at: number, rate: number): Promise<void> {
    const gap = 1000 / rate;
    await Promise.all(
      this.list.map(async (u, k) => {
        const due = at + k * gap - nowMs();
        if (due > 0) await new Promise((r) => setTimeout(r, due));
        if (!u.token) return; // its sign-in failed (counted there)
        counters.connectAttempted++;
        if (await this.open(u, true)) counters.connected++;
        else counters.connectFailed++;
      }),
    );
  }

  /** Opens `u`'s connection; a refused cached token is replaced by a fresh sign-in once. */
  async open(u: User, measure: boolean): Promise<boolean> {
    for (let attempt = 0; attempt < 2; attempt++) {
      const t0 = nowMs();
      try {
        const conn = await Conn.open(u.url, u.token, u.source, this.plan.origin, 15_000);
        if (measure) hists.connectMs.add(nowMs() - t0);
        this.attach(u, conn);
        return true;
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (attempt === 0 && (code === 'AUTH_TOKEN_INVALID' || code === 'AUTH_TOKEN_EXPIRED')) {
          try {
            await this.signIn(u);
            continue;
          } catch {
            return false;
          }
        }
        countError('connect', err);
        return false;
      }
    }
    return false;
  }

  private attach(u: User, conn: Conn): void {
    u.conn = conn;
    counters.online++;
    conn.onEvent = (ev, data) => {
      if (ev === 'session.token') {
        const t = data as EventMap['session.token'];
        u.token = t.token;
        u.expiresAt = Date.parse(t.expiresAt);
        counters.tokensRefreshed++;
        this.onToken(u);
        return;
      }
      const h = u.handlers[ev] as ((u: User, d: unknown) => void) | undefined;
      h?.(u, data);
    };
    conn.onClose = (code, byUs) => {
      counters.online--;
      if (u.conn === conn) u.conn = null;
      if (byUs) return;
      counters.dropped++;
      countError('socket', { code: `CLOSED_${code}` });
      // Like a real client: come back after a moment (a draining node closes with 1012).
      if (this.live) setTimeout(() => void this.reopen(u), 500 + Math.random() * 1000);
    };
    this.onConnected(u);
  }

  /** Reopens after a drop or a planned disconnect, then catches up with chat.sync. */
  async reopen(u: User): Promise<boolean> {
    if (!this.live || u.conn) return false;
    const ok = await this.open(u, false);
    if (ok) counters.churnReconnects++;
    else counters.churnReconnectFailed++;
    return ok;
  }

  async closeAll(): Promise<void> {
    this.live = false;
    await Promise.all(this.list.map((u) => u.conn?.close()));
  }
}
