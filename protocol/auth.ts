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

/** HTTP: POST /auth/verify */
export const verifyRequest = z.object({
  message: z.string().min(1).max(4096),
  signature: z.string().regex(/^0x[0-9a-fA-F]{130}$/, 'expected a 65-byte hex signature'),
});
export type VerifyRequest = z.infer<typeof verifyRequest>;

export interface TokenResponse {
  token: string;
  address: string;
  expiresAt: string;
}
