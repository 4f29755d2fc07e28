import { BlockRtcError, CLOSE } from '../../protocol/errors.ts';
import type { Connection } from '../ws/connection.ts';
import type { SessionRecord, SessionStore } from './sessions/store.ts';
import type { TokenClaims, TokenService } from './tokens.ts';

/**
 * After a refresh the token it replaced is still accepted this long, so a reconnect that
 * was already under way with it (or a refresh answer lost with a dropped socket) succeeds.
 */
export const PREVIOUS_TOKEN_GRACE_MS = 10_000;

/** Claims of a token that passed the session check (they carry the session's absolute end). */
export type SessionClaims = TokenClaims;

interface Bound {
  sid: string;
  /** Generation of the connection's current token. */
  gen: number;
  sessionExpiresAt: number;
}

/**
 * Server-side sessions: sign-in opens one, every token names it and its generation, a
 * refresh moves it to the next generation (older tokens are refused at connect), sign-out
 * ends it and closes its sockets on every node, and nothing outlives its absolute end.
 */
export class SessionService {
  private readonly bound = new WeakMap<Connection, Bound>();
  private lastPoll = Date.now();

  constructor(
    private readonly store: SessionStore,
    private readonly tokens: TokenService,
    private readonly opts: { maxAgeSec: number; maxConnectionsPerUser: number },
    /** This node's live connections. */
    private readonly local: { forEach(fn: (conn: Connection) => void): void; local(user: string): ReadonlySet<Connection> | undefined },
  ) {}

  /** A successful sign-in: a new session and its first token. */
  async signIn(address: string): Promise<{ token: string; expiresAt: number; sessionExpiresAt: number }> {
    const rec = await this.store.create(address, this.opts.maxAgeSec);
    const t = this.tokens.issue({ address, sid: rec.id, gen: rec.gen, sessionExpiresAt: rec.expiresAt });
    return { ...t, sessionExpiresAt: rec.expiresAt };
  }

  /**
   * A token that is signed, unexpired, of a live session and of its current generation
   * (or the previous one within the grace period).
   */
  async check(token: string): Promise<SessionClaims> {
    const claims = this.tokens.verify(token);
    const rec = await this.record(claims);
    if (!rec || rec.ended || rec.address !== claims.address) throw new BlockRtcError('AUTH_SESSION_ENDED');
    // A generation above the record's was issued by us and the record is a restored, older one.
    const current = claims.gen >= rec.gen || (claims.gen === rec.gen - 1 && Date.now() < rec.previousUntil);
    if (!current) throw new BlockRtcError('AUTH_TOKEN_SUPERSEDED');
    return { ...claims, sessionExpiresAt: Math.min(claims.sessionExpiresAt, rec.expiresAt) };
  }

  /** The session's record, restored from the signed token if the store lost it (see SessionStore). */
  private async record(claims: TokenClaims): Promise<SessionRecord | null> {
    return (
      (await this.store.get(claims.sid)) ??
      this.store.restore({ id: claims.sid, address: claims.address, expiresAt: claims.sessionExpiresAt, gen: claims.gen })
    );
  }

  /** Refuses a new connection beyond MAX_CONNECTIONS_PER_USER (all nodes; approximate under simultaneous connects). */
  async admit(address: string): Promise<void> {
    const n = (await this.store.connectionCount(address)) ?? this.local.local(address)?.size ?? 0;
    if (n >= this.opts.maxConnectionsPerUser) {
      throw new BlockRtcError('TOO_MANY_CONNECTIONS', `At most ${this.opts.maxConnectionsPerUser} connections per account are allowed`);
    }
  }

  /** Ties an accepted connection to its session. */
  bind(conn: Connection, claims: SessionClaims): void {
    this.bound.set(conn, { sid: claims.sid, gen: claims.gen, sessionExpiresAt: claims.sessionExpiresAt });
  }

  sessionOf(conn: Connection): string | undefined {
    return this.bound.get(conn)?.sid;
  }

  /** Whether a refresh could give this connection a token that lives longer than its current one. */
  canExtend(conn: Connection): boolean {
    const b = this.bound.get(conn);
    // Token expiry is in whole seconds, rounded down.
    return b !== undefined && Math.floor(b.sessionExpiresAt / 1000) * 1000 > conn.tokenExpiresAt;
  }

  /**
   * A fresh token for a live connection, of the session's next generation (or of its
   * current one when another connection of the session already moved it on). The other
   * connections of the session on this node get the new token as `session.token` at once,
   * so tabs sharing one stored token keep a usable one.
   */
  async refresh(conn: Connection): Promise<{ token: string; expiresAt: number }> {
    const b = this.bound.get(conn);
    if (!b) throw new BlockRtcError('AUTH_SESSION_ENDED');
    let rec = await this.store.rotate(b.sid, PREVIOUS_TOKEN_GRACE_MS, b.gen);
    if (!rec && !(await this.store.get(b.sid))) {
      // The store lost the session while this connection held it: restore, then move on.
      await this.store.restore({ id: b.sid, address: conn.address, expiresAt: b.sessionExpiresAt, gen: b.gen });
      rec = await this.store.rotate(b.sid, PREVIOUS_TOKEN_GRACE_MS, b.gen);
    }
    if (!rec) throw new BlockRtcError('AUTH_SESSION_ENDED');
    const subject = { address: rec.address, sid: rec.id, gen: rec.gen, sessionExpiresAt: rec.expiresAt };
    const t = this.tokens.issue(subject);
    conn.tokenExpiresAt = t.expiresAt;
    b.gen = rec.gen;
    for (const other of this.local.local(conn.address) ?? []) {
      const ob = this.bound.get(other);
      if (other === conn || other.closed || !ob || ob.sid !== b.sid || ob.gen >= rec.gen) continue;
      ob.gen = rec.gen;
      other.tokenExpiresAt = t.expiresAt;
      other.event('session.token', { token: t.token, expiresAt: new Date(t.expiresAt).toISOString() });
    }
    return t;
  }

  /**
   * Sign-out with a token (HTTP): any signed, unexpired token of the session will do,
   * even one a refresh replaced. Its sockets on this node close now, elsewhere within a
   * housekeeping tick.
   */
  async signOutWithToken(token: string): Promise<void> {
    const claims = this.tokens.verify(token);
    const rec = await this.record(claims);
    if (!rec || rec.ended || rec.address !== claims.address) throw new BlockRtcError('AUTH_SESSION_ENDED');
    await this.end(claims.sid, rec.expiresAt);
  }

  /** Sign-out from a live connection; its own socket closes after the answer is written. */
  async signOut(conn: Connection): Promise<void> {
    const b = this.bound.get(conn);
    if (!b) throw new BlockRtcError('AUTH_SESSION_ENDED');
    await this.end(b.sid, b.sessionExpiresAt);
  }

  private async end(sid: string, expiresAt: number): Promise<void> {
    await this.store.end(sid, expiresAt);
    setImmediate(() => this.closeLocal(new Set([sid])));
  }

  /** Closes this node's sockets of sessions ended anywhere since the last poll (housekeeping tick). */
  async pollEnded(): Promise<void> {
    const now = Date.now();
    // Overlap the windows a little: a record written with a slightly older clock is not missed.
    const ended = await this.store.endedSince(this.lastPoll - 2_000);
    this.lastPoll = now;
    if (ended.length > 0) this.closeLocal(new Set(ended));
  }

  private closeLocal(sids: Set<string>): void {
    this.local.forEach((conn) => {
      const b = this.bound.get(conn);
      if (b && sids.has(b.sid)) conn.close(CLOSE.SESSION_ENDED, 'session ended');
    });
  }
}
