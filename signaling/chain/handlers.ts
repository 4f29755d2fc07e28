import type { Handlers } from '../ws/dispatch.ts';
import { checksumAddress } from '../address.ts';
import type { EnsNames } from './ens.ts';

/** ENS requests: verified primary names for a batch of addresses, and a name to its address. */
export function ensHandlers(ens: EnsNames): Pick<Handlers, 'ens.names' | 'ens.resolve'> {
  return {
    'ens.names': (_c, r) => ens.names(r.addresses.map(checksumAddress)),
    'ens.resolve': (_c, r) => ens.resolve(r.name),
  };
}
