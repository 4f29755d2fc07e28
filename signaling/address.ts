import { getAddress } from 'ethers';

const MAX_ENTRIES = 50_000;
const cache = new Map<string, string>();

/**
 * EIP-55 checksummed form of an address (throws on an invalid one, like ethers' getAddress).
 * Checksumming hashes with keccak in JavaScript; every chat frame names a peer, and the same
 * few addresses recur, so results are kept in a bounded cache (oldest dropped first).
 */
export function checksumAddress(address: string): string {
  const hit = cache.get(address);
  if (hit !== undefined) return hit;
  const checked = getAddress(address);
  if (cache.size >= MAX_ENTRIES) cache.delete(cache.keys().next().value!);
  cache.set(address, checked);
  return checked;
}
