import { createHmac } from 'node:crypto';
import type { IceServer } from '../protocol/index.ts';

/**
 * Ephemeral TURN credentials for coturn's `use-auth-secret` (TURN REST API): the username
 * is `<expiry unix time>:<address>`, the password base64(HMAC-SHA1(secret, username)).
 */
export function turnCredentials(secret: string, address: string, ttlSec: number, urls: string[], now = Date.now()): IceServer {
  const username = `${Math.floor(now / 1000) + ttlSec}:${address}`;
  const credential = createHmac('sha1', secret).update(username).digest('base64');
  return { urls, username, credential };
}
