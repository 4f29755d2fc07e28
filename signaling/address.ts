import { toChecksumAddress } from '../protocol/common.ts';
import { BlockRtcError } from '../protocol/errors.ts';

/**
 * EIP-55 checksummed form of an address. An invalid one is the client's mistake (the schemas
 * refuse it first; this is the second line): INVALID_FIELDS, never a plain error.
 * Shares the protocol's bounded cache, so an address validated in a frame is not hashed again.
 */
export function checksumAddress(address: string): string {
  const checked = toChecksumAddress(address);
  if (checked === null) throw new BlockRtcError('INVALID_FIELDS', `Invalid address ${JSON.stringify(address.slice(0, 64))}`);
  return checked;
}
