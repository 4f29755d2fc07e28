/** A signed-in session: one per successful sign-in (one per device, usually). */
export interface SessionRecord {
  id: string;
  address: string;
  /** Absolute end (ms since the epoch): no token of the session is valid past it. */
  expiresAt: number;
  /** Generation of the current token; a refresh makes a new one. */
  gen: number;
  /** Until when (ms) the token of the previous generation is still accepted. */
  previousUntil: number;
  /** Signed out: no token of it is accepted (kept until `expiresAt`). */
  ended: boolean;
}

/** What a signed token says about its session: enough to restore a record the store lost. */
export interface SessionVouch {
  id: string;
  address: string;
  expiresAt: number;
  gen: number;
}

/**
 * Server-side sessions shared by every node (Redis), or kept in the process (embedded
 * mode). Tokens name their session and generation; a signed-out session, or one past its
 * absolute end, accepts no token.
 *
 * The store is soft state, like everything in Redis here: a record it lost (Redis restarted
 * without persistence, the embedded process restarted) is restored from the next signed
 * token that names it, so losing Redis never signs everyone out. What such a loss forgets
 * is sign-outs: run Redis with persistence where revocation must survive it.
 */
export interface SessionStore {
  create(address: string, maxAgeSec: number): Promise<SessionRecord>;
  get(id: string): Promise<SessionRecord | null>;
  /** Recreates a record the store does not have; returns the record it has (possibly ended). */
  restore(v: SessionVouch): Promise<SessionRecord | null>;
  /**
   * Moves the session from generation `fromGen` to the next; the previous one stays valid
   * for `graceMs` (a reconnect already under way with it). When the session is already
   * past `fromGen` (another connection of it refreshed first) nothing changes and the
   * current record is returned, so every holder of the session converges on one
   * generation. Null when the session is gone.
   */
  rotate(id: string, graceMs: number, fromGen: number): Promise<SessionRecord | null>;
  /** Ends the session (kept as ended until `expiresAt`). Recorded so other nodes close its sockets. */
  end(id: string, expiresAt: number): Promise<void>;
  /** Ids of sessions ended at or after `since` (ms), for closing their sockets everywhere. */
  endedSince(since: number): Promise<string[]>;
  /** Live connections of a user across every node, or null when only this process knows. */
  connectionCount(user: string): Promise<number | null>;
}

/** Ended-session records are kept this long: every node polls well within it. */
export const ENDED_RETENTION_MS = 60_000;
