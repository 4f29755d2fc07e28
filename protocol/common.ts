import { getAddress } from 'ethers';
import { z } from 'zod';

export { BEARER_PROTOCOL_PREFIX, PROTOCOL_VERSION, SUBPROTOCOL, type AppConfig } from './constants.ts';

const HEX_ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const MAX_CACHED = 50_000;
const checksums = new Map<string, string>();

/**
 * EIP-55 form of an address, or null when it is not one: not 40 hex digits, or mixed case
 * that fails its checksum (all-lower and all-upper carry no checksum and are accepted).
 * Checksumming hashes with keccak in JavaScript; every chat frame names a peer and the same
 * few addresses recur, so valid results are kept in a bounded cache (oldest dropped first).
 */
export function toChecksumAddress(value: string): string | null {
  const hit = checksums.get(value);
  if (hit !== undefined) return hit;
  if (!HEX_ADDRESS.test(value)) return null;
  let checked: string;
  try {
    checked = getAddress(value);
  } catch {
    return null;
  }
  if (checksums.size >= MAX_CACHED) checksums.delete(checksums.keys().next().value!);
  checksums.set(value, checked);
  return checked;
}

export const address = z
  .string()
  .regex(HEX_ADDRESS, 'expected a 0x-prefixed 20-byte hex address')
  .refine((v) => !HEX_ADDRESS.test(v) || toChecksumAddress(v) !== null, 'bad EIP-55 checksum: use the checksummed, all-lowercase or all-uppercase form');

/** Largest id a PostgreSQL bigint (int8) holds. */
export const MAX_MESSAGE_ID = '9223372036854775807';
/** Server-assigned ids are decimal strings (bigint in the database). */
export const messageId = z
  .string()
  .regex(/^\d{1,19}$/, 'expected a message id')
  .refine((v) => {
    if (!/^\d{1,19}$/.test(v)) return true;
    const digits = v.replace(/^0+(?=\d)/, '');
    return digits.length < 19 || digits <= MAX_MESSAGE_ID;
  }, `a message id is at most ${MAX_MESSAGE_ID}`);
export const requestId = z.string().min(1).max(64);
