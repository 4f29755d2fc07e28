import { AbiCoder, concat, getBytes } from 'ethers';
import type { ChainRpc } from './rpc.ts';
import { isContractAnswer } from './rpc.ts';
import { SIGNATURE_VALIDATOR_BYTECODE } from './signature-validator.ts';

/** What sign-in needs from the chain: does a contract wallet accept a signature of a hash? */
export interface ContractSignatureChecker {
  /** Whether this server can ask that chain at all (CHAIN_RPC_URLS). */
  supports(chainId: number): boolean;
  /**
   * True when the wallet at `address` accepts `signature` for `hash`: a deployed contract
   * through EIP-1271 `isValidSignature`, a not yet deployed one through its ERC-6492
   * wrapper (factory call, then EIP-1271). Throws CHAIN_NOT_CONFIGURED / CHAIN_UNAVAILABLE.
   */
  isValidSignature(chainId: number, address: string, hash: string, signature: string): Promise<boolean>;
}

/**
 * One eth_call per check: the creation code of `contracts/SignatureValidator.sol` runs
 * "deployless" with (signer, hash, signature) as constructor arguments and returns one byte.
 * A revert of that call is the wallet refusing, not an outage.
 */
export class ContractSignatures implements ContractSignatureChecker {
  constructor(private readonly rpc: ChainRpc) {}

  supports(chainId: number): boolean {
    return this.rpc.configured(chainId);
  }

  async isValidSignature(chainId: number, address: string, hash: string, signature: string): Promise<boolean> {
    const args = AbiCoder.defaultAbiCoder().encode(['address', 'bytes32', 'bytes'], [address, hash, signature]);
    const data = concat([SIGNATURE_VALIDATOR_BYTECODE, args]);
    return this.rpc.read(chainId, 'isValidSignature', async (p) => {
      try {
        const out = getBytes(await p.call({ data }));
        return out.length === 1 && out[0] === 1;
      } catch (err) {
        if (isContractAnswer(err)) return false;
        throw err;
      }
    });
  }
}
