import { z } from 'zod';

/** HTTP: POST /auth/nonce → NonceResponse */
export interface NonceResponse {
  nonce: string;
  /** Values the client must put into its EIP-4361 message. */
  domain: string;
  uri: string;
  chainIds: number[];
  expiresAt: string;
}

/** Largest signature accepted (an ERC-6492 signature carries the wallet's deployment call). */
export const MAX_SIGNATURE_BYTES = 4096;

/** HTTP: POST /auth/verify */
export const verifyRequest = z.object({
  message: z.string().min(1).max(4096),
  // 65 bytes from a key (EOA); contract wallets (EIP-1271: multisig, passkey wallets) and
  // wallets not deployed yet (ERC-6492, which wraps the factory call) sign with more.
  signature: z
    .string()
    .max(2 + 2 * MAX_SIGNATURE_BYTES, `at most ${MAX_SIGNATURE_BYTES} bytes`)
    .regex(/^0x(?:[0-9a-fA-F]{2}){65,}$/, 'expected a 0x-prefixed hex signature of at least 65 bytes'),
});
export type VerifyRequest = z.infer<typeof verifyRequest>;

export interface TokenResponse {
  token: string;
  address: string;
  expiresAt: string;
}
