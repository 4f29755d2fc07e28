import { randomBytes } from 'node:crypto';
import { getAddress, verifyMessage } from 'ethers';
import { SiweMessage } from 'siwe';
import { BlockRtcError } from '../../protocol/errors.ts';

export interface SiweRules {
  domain: string;
  /** Origin the message's URI must belong to. */
  uri: string;
  chainIds: number[];
  /** Longest accepted age of `Issued At`, and tolerated clock skew. */
  maxAgeSec: number;
  skewSec: number;
}

/** EIP-4361 nonces: at least 8 alphanumeric characters. */
export function newNonce(): string {
  return randomBytes(16).toString('hex');
}

/**
 * Checks an EIP-4361 message and its EIP-191 signature. Returns the checksummed
 * address and the nonce, which the caller must still consume.
 */
export function verifySiwe(text: string, signature: string, rules: SiweRules, now = Date.now()): { address: string; nonce: string } {
  let msg: SiweMessage;
  try {
    msg = new SiweMessage(text);
  } catch {
    throw new BlockRtcError('AUTH_INVALID_MESSAGE');
  }
  if (msg.domain !== rules.domain) throw new BlockRtcError('AUTH_DOMAIN_MISMATCH', `The message was signed for ${JSON.stringify(msg.domain)}, not ${JSON.stringify(rules.domain)}`);
  let uriOrigin: string;
  try {
    uriOrigin = new URL(msg.uri).origin;
  } catch {
    throw new BlockRtcError('AUTH_URI_MISMATCH');
  }
  if (uriOrigin !== new URL(rules.uri).origin) throw new BlockRtcError('AUTH_URI_MISMATCH');
  if (!rules.chainIds.includes(msg.chainId)) throw new BlockRtcError('AUTH_CHAIN_NOT_ALLOWED', `Chain ${msg.chainId} is not accepted; use one of ${rules.chainIds.join(', ')}`);

  const skew = rules.skewSec * 1000;
  const issuedAt = msg.issuedAt ? Date.parse(msg.issuedAt) : NaN;
  if (Number.isNaN(issuedAt)) throw new BlockRtcError('AUTH_INVALID_MESSAGE', 'The message needs an Issued At time');
  if (issuedAt > now + skew) throw new BlockRtcError('AUTH_MESSAGE_NOT_YET_VALID', 'The message is issued in the future');
  if (issuedAt < now - rules.maxAgeSec * 1000) throw new BlockRtcError('AUTH_MESSAGE_EXPIRED', 'The message was issued too long ago');
  if (msg.expirationTime && Date.parse(msg.expirationTime) <= now - skew) throw new BlockRtcError('AUTH_MESSAGE_EXPIRED');
  if (msg.notBefore && Date.parse(msg.notBefore) > now + skew) throw new BlockRtcError('AUTH_MESSAGE_NOT_YET_VALID');

  let claimed: string;
  let recovered: string;
  try {
    claimed = getAddress(msg.address);
    recovered = verifyMessage(text, signature);
  } catch {
    throw new BlockRtcError('AUTH_BAD_SIGNATURE');
  }
  if (recovered !== claimed) throw new BlockRtcError('AUTH_BAD_SIGNATURE');
  return { address: claimed, nonce: msg.nonce };
}
