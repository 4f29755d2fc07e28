import { BlockRtcError } from '../../protocol/errors.ts';
import type { TokenGate } from '../../protocol/index.ts';
import type { GateEvaluator } from './gates.ts';

export type Recheck =
  /** Passed now: access continues, counted from `verifiedAt`. */
  | { access: 'keep'; verifiedAt: number }
  /** The chain could not be asked: access continues until `until` (GATE_GRACE_SECONDS after the last pass). */
  | { access: 'grace'; verifiedAt: number; until: number; error: BlockRtcError }
  /** No longer holds the tokens, or the chain has been unreachable for longer than the grace. */
  | { access: 'revoke'; reason: 'not-met' | 'chain-unavailable' };

/**
 * The failure policy of token gates. New joins fail closed: when the chain cannot be asked
 * they are refused (CHAIN_UNAVAILABLE / CHAIN_NOT_CONFIGURED), never let in on trust. People
 * already in keep access through an outage for the grace period after their last pass, so a
 * flaky RPC endpoint does not empty a group; a definite "does not hold" ends it at once.
 */
export class GateAccess {
  constructor(
    private readonly gates: GateEvaluator,
    private readonly graceMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** For a new member: resolves when admitted; GATE_NOT_MET, or the chain's error, otherwise. */
  async admit(gate: TokenGate, address: string): Promise<number> {
    const result = await this.gates.checkGate(gate, address);
    if (!result.allowed) throw new BlockRtcError('GATE_NOT_MET');
    return this.now();
  }

  /** For an existing member last verified at `lastVerifiedAt` (ms). */
  async recheck(gate: TokenGate, address: string, lastVerifiedAt: number): Promise<Recheck> {
    try {
      const result = await this.gates.checkGate(gate, address);
      return result.allowed ? { access: 'keep', verifiedAt: this.now() } : { access: 'revoke', reason: 'not-met' };
    } catch (err) {
      if (!(err instanceof BlockRtcError)) throw err;
      const until = lastVerifiedAt + this.graceMs;
      if (this.now() < until) return { access: 'grace', verifiedAt: lastVerifiedAt, until, error: err };
      return { access: 'revoke', reason: 'chain-unavailable' };
    }
  }
}
