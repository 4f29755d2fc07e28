/**
 * Wallet addresses: every address the SDK sends or keys a map by goes through normalize, so the
 * same account always has one spelling (EIP-55 checksum case), whatever the user typed.
 */
import { getAddress } from 'ethers';
import { BlockRtcClientError } from './errors.ts';

/** The checksummed form of an address; INVALID_FIELDS when it is not one. */
export function normalize(address: string): string {
  try {
    return getAddress(address.trim().toLowerCase());
  } catch {
    throw new BlockRtcClientError('INVALID_FIELDS', `Not a wallet address: ${address}`);
  }
}
