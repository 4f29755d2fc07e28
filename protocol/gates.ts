import { z } from 'zod';
import { address } from './common.ts';

const UINT256_MAX = 2n ** 256n - 1n;

/** A uint256 as a decimal string (JSON numbers lose precision past 2^53). */
const uint256 = z
  .string()
  .regex(/^\d{1,78}$/, 'expected a decimal integer string')
  .refine((v) => !/^\d{1,78}$/.test(v) || BigInt(v) <= UINT256_MAX, 'larger than uint256');
const positiveAmount = uint256.refine((v) => !/^\d{1,78}$/.test(v) || BigInt(v) > 0n, 'must be at least 1');
const chainId = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);

/** Hold at least `minAmount` (base units, no decimals applied) of an ERC-20. */
export const erc20Rule = z.strictObject({ standard: z.literal('erc20'), chainId, contract: address, minAmount: positiveAmount });
/** Hold any token of an ERC-721 collection, or the one with `tokenId`. */
export const erc721Rule = z.strictObject({ standard: z.literal('erc721'), chainId, contract: address, tokenId: uint256.optional() });
/** Hold at least `minAmount` of one ERC-1155 token id. */
export const erc1155Rule = z.strictObject({ standard: z.literal('erc1155'), chainId, contract: address, tokenId: uint256, minAmount: positiveAmount });

export const gateRule = z.discriminatedUnion('standard', [erc20Rule, erc721Rule, erc1155Rule]);

/** A token gate: its rules combined with any-of (`match: "any"`) or all-of (`match: "all"`). */
export const tokenGate = z.strictObject({
  match: z.enum(['any', 'all']),
  rules: z.array(gateRule).min(1).max(10),
});

export type GateRule = z.infer<typeof gateRule>;
export type TokenGate = z.infer<typeof tokenGate>;
