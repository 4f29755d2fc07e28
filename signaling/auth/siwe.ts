import { randomBytes } from 'node:crypto';
import { getAddress, hashMessage, verifyMessage } from 'ethers';
import { SiweMessage } from 'siwe';
import { BlockRtcError } from '../../protocol/errors.ts';
import type { ContractSignatureChecker } from '../chain/signatures.ts';

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
 * Checks an EIP-4361 message and its EIP-191 signature by a key (an EOA), offline. Returns
 * the checksummed address and the nonce, which the caller must still consume.
 */
export function verifySiwe(text: string, signature: string, rules: SiweRules, now = Date.now()): { address: string; nonce: string } {
  const msg = checkSiweMessage(text, rules, now);
  const claimed = claimedAddress(msg);
  if (recoverSigner(text, signature) !== claimed) throw new BlockRtcError('AUTH_BAD_SIGNATURE');
  return { address: claimed, nonce: msg.nonce };
}

/**
 * Like `verifySiwe`, and accepts smart-contract wallets: a signature the key check does not
 * match is put to the wallet on the message's chain (EIP-1271, or ERC-6492 for a wallet not
 * deployed yet). An EOA's signature is still settled offline, without a chain round trip.
 */
export async function verifySiweWallet(
  text: string,
  signature: string,
  rules: SiweRules,
  contracts: ContractSignatureChecker,
  now = Date.now(),
): Promise<{ address: string; nonce: string }> {
  const msg = checkSiweMessage(text, rules, now);
  const claimed = claimedAddress(msg);
  if (recoverSigner(text, signature) === claimed) return { address: claimed, nonce: msg.nonce };
  if (!contracts.supports(msg.chainId)) {
    const fix = `add "${msg.chainId}=<url>" to CHAIN_RPC_URLS`;
    // A key-sized signature that does not match is most likely just wrong; anything else is a contract wallet's.
    if (isKeySized(signature)) throw new BlockRtcError('AUTH_BAD_SIGNATURE', `The signature does not match the address (contract wallets on chain ${msg.chainId} need: ${fix})`);
    throw new BlockRtcError('CHAIN_NOT_CONFIGURED', `Contract-wallet sign-in on chain ${msg.chainId} is not set up: ${fix}`);
  }
  if (!(await contracts.isValidSignature(msg.chainId, claimed, hashMessage(text), signature))) {
    throw new BlockRtcError('AUTH_BAD_SIGNATURE', 'Neither the address\'s key nor its wallet contract accepts this signature');
  }
  return { address: claimed, nonce: msg.nonce };
}

/** Domain, URI, chain id and times of an EIP-4361 message; the signature is not looked at. */
function checkSiweMessage(text: string, rules: SiweRules, now: number): SiweMessage {
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
  return msg;
}

function claimedAddress(msg: SiweMessage): string {
  try {
    return getAddress(msg.address);
  } catch {
    throw new BlockRtcError('AUTH_BAD_SIGNATURE');
  }
}

/** The EOA that produced a 65-byte EIP-191 signature, or null for anything else. */
function recoverSigner(text: string, signature: string): string | null {
  if (!isKeySized(signature)) return null;
  try {
    return verifyMessage(text, signature);
  } catch {
    return null;
  }
}

function isKeySized(signature: string): boolean {
  return /^0x[0-9a-fA-F]{130}$/.test(signature);
}
