/**
 * Protocol constants the browser needs too. This module imports nothing (no zod), so the
 * SDK can take values from it without pulling the schemas into its bundle.
 */

/** Version carried in the WebSocket subprotocol `blockrtc.v1`. */
export const PROTOCOL_VERSION = 1;
export const SUBPROTOCOL = `blockrtc.v${PROTOCOL_VERSION}`;
/** Browsers cannot set headers on a WebSocket, so the token travels as a second subprotocol. */
export const BEARER_PROTOCOL_PREFIX = 'bearer.';

/** GET /app-config.json: what a server offers before sign-in. */
export interface AppConfig {
  protocol: number;
  devWallet: boolean;
  chainIds: number[];
  mode: string;
}
