import { Contract, getAddress } from 'ethers';
import { BlockRtcError } from '../../protocol/errors.ts';
import type { GateRule, TokenGate } from '../../protocol/index.ts';
import { TtlCache } from './cache.ts';
import { isContractAnswer, type ChainRpc } from './rpc.ts';

const ABI = [
  'function balanceOf(address) view returns (uint256)',
  'function ownerOf(uint256) view returns (address)',
  'function balanceOf(address, uint256) view returns (uint256)',
];

export interface RuleResult {
  rule: GateRule;
  /** null: the chain could not be asked (see `error`). */
  held: boolean | null;
  error?: BlockRtcError;
}

export interface GateResult {
  allowed: boolean;
  rules: RuleResult[];
}

/**
 * Decides whether an address passes a token gate by reading balances and owners on each
 * rule's chain, cached for CHAIN_CACHE_TTL_SECONDS (a transfer shows once that passes).
 * A contract that reverts or is not a token counts as "not held". A result is given
 * whenever the rules that could be read decide it (one held rule for `any`, one missing for
 * `all`); otherwise the chain's error is thrown (CHAIN_UNAVAILABLE, CHAIN_NOT_CONFIGURED).
 */
export class GateEvaluator {
  private readonly reads: TtlCache<bigint>;

  constructor(
    private readonly rpc: ChainRpc,
    cacheTtlSec: number,
  ) {
    this.reads = new TtlCache(cacheTtlSec * 1000);
  }

  async checkGate(gate: TokenGate, address: string): Promise<GateResult> {
    const holder = getAddress(address);
    const rules = await Promise.all(
      gate.rules.map(async (rule): Promise<RuleResult> => {
        try {
          return { rule, held: await this.holds(rule, holder) };
        } catch (err) {
          if (err instanceof BlockRtcError) return { rule, held: null, error: err };
          throw err;
        }
      }),
    );
    const decisive = gate.match === 'any' ? rules.some((r) => r.held === true) : rules.some((r) => r.held === false);
    if (decisive) return { allowed: gate.match === 'any', rules };
    const failed = rules.find((r) => r.error);
    if (failed?.error) throw failed.error;
    return { allowed: gate.match === 'all', rules };
  }

  private async holds(rule: GateRule, holder: string): Promise<boolean> {
    switch (rule.standard) {
      case 'erc20':
        return (await this.uint(rule.chainId, rule.contract, 'balanceOf(address)', [holder])) >= BigInt(rule.minAmount);
      case 'erc721':
        if (rule.tokenId === undefined) return (await this.uint(rule.chainId, rule.contract, 'balanceOf(address)', [holder])) >= 1n;
        // An owner is cached as a number so one cache serves every read.
        return (await this.uint(rule.chainId, rule.contract, 'ownerOf(uint256)', [rule.tokenId])) === BigInt(holder);
      case 'erc1155':
        return (await this.uint(rule.chainId, rule.contract, 'balanceOf(address,uint256)', [holder, rule.tokenId])) >= BigInt(rule.minAmount);
    }
  }

  /** One cached contract read, as an unsigned integer; a revert or a non-contract reads as 0. */
  private uint(chainId: number, contract: string, fn: string, args: string[]): Promise<bigint> {
    const key = `${chainId}:${contract}:${fn}:${args.join(',')}`;
    return this.reads.fresh(key, () =>
      this.rpc.read(chainId, fn, async (provider) => {
        const token = new Contract(contract, ABI, provider);
        try {
          const value: unknown = await token.getFunction(fn).staticCall(...args);
          return typeof value === 'bigint' ? value : BigInt(String(value));
        } catch (err) {
          if (isContractAnswer(err)) return 0n;
          throw err;
        }
      }),
    );
  }
}
