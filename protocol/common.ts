import { z } from 'zod';

/** Version carried in the WebSocket subprotocol `blockrtc.v1`. */
export const PROTOCOL_VERSION = 1;
export const SUBPROTOCOL = `blockrtc.v${PROTOCOL_VERSION}`;
/** Browsers cannot set headers on a WebSocket, so the token travels as a second subprotocol. */
export const BEARER_PROTOCOL_PREFIX = 'bearer.';

export const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/, 'expected a 0x-prefixed 20-byte hex address');
/** Server-assigned ids are decimal strings (bigint in the database). */
export const messageId = z.string().regex(/^\d{1,19}$/, 'expected a message id');
export const requestId = z.string().min(1).max(64);
