/**
 * Deterministic load-test wallets: wallet i of a seed has the private key
 * keccak256(utf8("<seed>:<i>")), so repeated runs with the same seed are the same users
 * (their contacts, history and cached tokens carry over).
 */
import { Wallet, keccak256, toUtf8Bytes } from 'ethers';

export function walletFor(seed: string, index: number): Wallet {
  return new Wallet(keccak256(toUtf8Bytes(`${seed}:${index}`)));
}
