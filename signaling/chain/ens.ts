import { ensNormalize, getAddress } from 'ethers';
import type { Config } from '../../config/config.ts';
import { LogThrottle, type Logger } from '../../infra/logger.ts';
import { BlockRtcError } from '../../protocol/errors.ts';
import type { EnsNamesResult } from '../../protocol/index.ts';
import { TtlCache } from './cache.ts';
import { isContractAnswer, type ChainRpc } from './rpc.ts';

/**
 * ENS on the chain of ENS_CHAIN_ID: primary names of addresses (a reverse record counts only
 * when the name's forward record points back at the address, as ENS requires) and names to
 * addresses. Both are cached for ENS_CACHE_TTL_SECONDS; names past it are served as they
 * were while a background lookup refreshes them, so a slow or failing chain never holds up
 * a chat screen: an address whose name cannot be looked up is answered with `name: null`.
 */
export class EnsNames {
  private readonly primary: TtlCache<string | null>;
  private readonly forward: TtlCache<string | null>;
  private readonly warn = new LogThrottle(10_000);

  constructor(
    private readonly rpc: ChainRpc,
    private readonly settings: Config['chain']['ens'],
    private readonly log: Logger,
  ) {
    this.primary = new TtlCache(settings.ttlSec * 1000);
    this.forward = new TtlCache(settings.ttlSec * 1000);
  }

  /** Verified primary names of (checksummed) addresses, in the order asked. */
  async names(addresses: string[]): Promise<EnsNamesResult> {
    this.requireEns();
    let incomplete = false;
    const names = await Promise.all(
      addresses.map(async (address) => {
        try {
          const name = await this.primary.stale(address, () => this.lookupPrimary(address), (err) => this.refreshFailed(err));
          return { address, name };
        } catch (err) {
          if (!(err instanceof BlockRtcError)) throw err;
          incomplete = true;
          return { address, name: null };
        }
      }),
    );
    return { names, incomplete };
  }

  /** The address a name points at; ENS_NAME_NOT_FOUND when none, CHAIN_UNAVAILABLE when the chain cannot say. */
  async resolve(name: string): Promise<{ name: string; address: string }> {
    this.requireEns();
    const normalized = ensNormalize(name);
    const address = await this.forward.fresh(normalized, () => this.rpc.read(this.settings.chainId, 'ens resolve', (p) => orNull(p.resolveName(normalized))));
    if (!address) throw new BlockRtcError('ENS_NAME_NOT_FOUND', `${normalized} does not resolve to an address`);
    return { name: normalized, address: getAddress(address) };
  }

  private async lookupPrimary(address: string): Promise<string | null> {
    return this.rpc.read(this.settings.chainId, 'ens reverse', async (p) => {
      const name = await orNull(p.lookupAddress(address));
      if (!name) return null;
      // ethers checks the forward record too; checked here as well so the rule does not
      // depend on which resolution path (legacy or universal resolver) ethers took.
      const back = await orNull(p.resolveName(name));
      return back !== null && getAddress(back) === address ? name : null;
    });
  }

  private requireEns(): void {
    const chainId = this.settings.chainId;
    if (!this.rpc.configured(chainId)) {
      throw new BlockRtcError('CHAIN_NOT_CONFIGURED', `ENS names need a JSON-RPC endpoint for chain ${chainId} (ENS_CHAIN_ID): add "${chainId}=<url>" to CHAIN_RPC_URLS`);
    }
    if (!this.rpc.hasEns(chainId)) {
      throw new BlockRtcError('CHAIN_NOT_CONFIGURED', `Chain ${chainId} has no known ENS registry: set ENS_REGISTRY`);
    }
  }

  private refreshFailed(err: unknown): void {
    if (this.warn.due()) this.log.warn({ err, held: this.warn.takeHeld() }, 'ENS name refresh failed; serving the cached name');
  }
}

/** A resolver or registry that reverts (no record, a mismatch the resolver itself reports) means "no name". */
async function orNull<T>(p: Promise<T | null>): Promise<T | null> {
  try {
    return await p;
  } catch (err) {
    if (isContractAnswer(err)) return null;
    throw err;
  }
}
