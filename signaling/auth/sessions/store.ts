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
}

/**
 * Server-side sessions shared by every node (Redis), or kept in the process (embedded
 * mode). Tokens name their session and generation; a session that is gone (signed out,
 * or past its absolute end) accepts no token.
 */
export interface SessionStore {
  create(address: string, maxAgeSec: number): Promise<SessionRecord>;
  get(id: string): Promise<SessionRecord | null>;
  /**
   * Moves the session from generation `fromGen` to the next; the previous one stays valid
   * for `graceMs` (a reconnect already under way with it). When the session is already
   * past `fromGen` (another connection of it refreshed first) nothing changes and the
   * current record is returned, so every holder of the session converges on one
   * generation. Null when the session is gone.
   */
  rotate(id: string, graceMs: number, fromGen: number): Promise<SessionRecord | null>;
  /** Ends the session; true if it existed. Recorded so other nodes close its sockets. */
  end(id: string): Promise<boolean>;
  /** Ids of sessions ended at or after `since` (ms), for closing their sockets everywhere. */
  endedSince(since: number): Promise<string[]>;
  /** Live connections of a user across every node, or null when only this process knows. */
  connectionCount(user: string): Promise<number | null>;
}

/** Ended-session records are kept this long: every node polls well within it. */
export const ENDED_RETENTION_MS = 60_000;
