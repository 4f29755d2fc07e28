export interface PresenceRecord {
  online: boolean;
  /** Milliseconds since the epoch; null if never seen or online. */
  lastSeen: number | null;
}

/**
 * Which users have at least one live connection anywhere, and since when they are gone.
 * Connections are recorded per node so a node that dies can be swept.
 */
export interface PresenceStore {
  /** Returns true when this is the user's first live connection. */
  connect(user: string, connection: string): Promise<boolean>;
  /** Returns true when this was the user's last live connection. */
  disconnect(user: string, connection: string, at: number): Promise<boolean>;
  query(users: string[]): Promise<Map<string, PresenceRecord>>;
  /** Marks this node alive; called every heartbeat. */
  heartbeat(now: number): Promise<void>;
  /** Clears the connections of nodes whose heartbeat is stale; returns users now offline. */
  sweep(now: number): Promise<{ user: string; lastSeen: number }[]>;
  /** Removes this node's record (clean shutdown, after its connections were closed). */
  leave(): Promise<void>;
}
