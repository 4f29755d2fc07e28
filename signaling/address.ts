import { toChecksumAddress } from '../protocol/common.ts';

/**
 * EIP-55 checksummed form of an address (throws on an invalid one, like ethers' getAddress).
 * Shares the protocol's bounded cache, so an address validated in a frame is not hashed again.
 */
export function checksumAddress(address: string): string {
  const checked = toChecksumAddress(address);
  if (checked === null) throw new TypeError(`invalid address ${JSON.stringify(address.slice(0, 64))}`);
  return checked;
}
