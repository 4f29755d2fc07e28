import { ensNormalize } from 'ethers';
import { z } from 'zod';
import { address } from './common.ts';

/** Most addresses one `ens.names` request may ask about (each may cost a few chain reads). */
export const MAX_ENS_BATCH = 50;

/** A dotted ENS name that normalizes (ENSIP-15), e.g. `alice.eth`; answered in normalized form. */
export const ensName = z
  .string()
  .min(3)
  .max(255)
  .refine((v) => {
    try {
      return ensNormalize(v).includes('.');
    } catch {
      return false;
    }
  }, 'expected an ENS name such as alice.eth');

export const ensNames = z.strictObject({
  type: z.literal('ens.names'),
  id: z.string().min(1).max(64),
  addresses: z.array(address).min(1).max(MAX_ENS_BATCH),
});

export const ensResolve = z.strictObject({
  type: z.literal('ens.resolve'),
  id: z.string().min(1).max(64),
  name: ensName,
});

export interface EnsNameEntry {
  /** Checksummed. */
  address: string;
  /** The primary name, shown only when its forward record points back at the address; else null. */
  name: string | null;
}

export interface EnsNamesResult {
  names: EnsNameEntry[];
  /**
   * True when some lookups could not be made (the chain did not answer): their names are
   * null for now; ask again later. Known names are served from cache even then.
   */
  incomplete: boolean;
}

export interface EnsResolveResult {
  /** Normalized. */
  name: string;
  address: string;
}
