import type { Config } from '../../config/config.ts';
import type { Logger } from '../../infra/logger.ts';
import { EnsNames } from './ens.ts';
import { GateAccess } from './gate-policy.ts';
import { GateEvaluator } from './gates.ts';
import { ChainRpc } from './rpc.ts';
import { ContractSignatures } from './signatures.ts';

/** Everything that reads a chain, over one set of providers. */
export interface Chain {
  rpc: ChainRpc;
  /** Contract-wallet sign-in (EIP-1271, ERC-6492). */
  signatures: ContractSignatures;
  ens: EnsNames;
  gates: GateEvaluator;
  /** Join / recheck policy of token gates. */
  access: GateAccess;
  close(): void;
}

export function createChain(config: Config, log: Logger): Chain {
  const rpc = new ChainRpc(config.chain, log);
  const gates = new GateEvaluator(rpc, config.chain.cacheTtlSec);
  return {
    rpc,
    signatures: new ContractSignatures(rpc),
    ens: new EnsNames(rpc, config.chain.ens, log),
    gates,
    access: new GateAccess(gates, config.chain.gateGraceSec * 1000),
    close: () => rpc.close(),
  };
}
