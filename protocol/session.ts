import { z } from 'zod';

export const sessionRefresh = z.strictObject({
  type: z.literal('session.refresh'),
  id: z.string().min(1).max(64),
});

export interface HelloEvent {
  protocol: number;
  address: string;
  node: string;
  connection: string;
  tokenExpiresAt: string;
  limits: { maxPayloadBytes: number; messages: { limit: number; windowMs: number } };
}
export interface TokenEvent {
  token: string;
  expiresAt: string;
}
export interface DrainingEvent {
  reason: string;
  reconnectInMs: number;
}

/** Ends this connection's session: every socket of it closes (4003), its tokens stop working. */
export const sessionSignOut = z.strictObject({
  type: z.literal('session.signOut'),
  id: z.string().min(1).max(64),
});

/**
 * Events for this connection may have been lost (the node's bus connection dropped, or a
 * publish to this user failed): run `chat.sync` from the stored cursor. The connection
 * stays open.
 */
export interface ResyncEvent {
  reason: 'bus-reconnected' | 'publish-failed';
}
