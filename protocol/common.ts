import { z } from 'zod';

export { BEARER_PROTOCOL_PREFIX, PROTOCOL_VERSION, SUBPROTOCOL, type AppConfig } from './constants.ts';

export const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/, 'expected a 0x-prefixed 20-byte hex address');
/** Server-assigned ids are decimal strings (bigint in the database). */
export const messageId = z.string().regex(/^\d{1,19}$/, 'expected a message id');
export const requestId = z.string().min(1).max(64);
