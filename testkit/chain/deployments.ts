import { AbiCoder, Contract, ZeroHash, concat, ensNormalize, id, namehash, type BaseContract, type Wallet } from 'ethers';
import { compileContracts } from './compile.ts';
import type { TestChain } from './node.ts';

/** The suffix that marks an ERC-6492 signature. */
export const ERC6492_MAGIC = '0x6492649264926492649264926492649264926492649264926492649264926492';

/** Sends a transaction to a deployed test contract and waits until it is mined. */
export async function send(contract: BaseContract, fn: string, args: unknown[], from?: Wallet): Promise<void> {
  const c = from ? (contract.connect(from) as BaseContract) : contract;
  const tx = (await c.getFunction(fn)(...args)) as { wait(): Promise<unknown> };
  await tx.wait();
}

/** Reads a view function of a deployed test contract. */
export async function view<T>(contract: BaseContract, fn: string, args: unknown[] = []): Promise<T> {
  return (await contract.getFunction(fn).staticCall(...args)) as T;
}

export interface TestEns {
  registry: string;
  /** Points `<label>.eth` at `address` (the deployer owns every name). */
  register(name: string, address: string): Promise<void>;
  /** Sets the reverse record (primary name claim) of the wallet's own address. */
  setReverse(wallet: Wallet, name: string): Promise<void>;
}

/** A minimal ENS (registry, resolver, addr.reverse registrar) on the test chain. */
export async function deployEns(chain: TestChain): Promise<TestEns> {
  const owner = chain.accounts[0]!;
  const registry = await chain.deploy('EnsRegistry');
  const resolver = await chain.deploy('EnsResolver', [registry.target]);
  const reverse = await chain.deploy('ReverseRegistrar', [registry.target, resolver.target]);
  await send(registry, 'setSubnodeOwner', [ZeroHash, id('reverse'), owner.address]);
  await send(registry, 'setSubnodeOwner', [namehash('reverse'), id('addr'), reverse.target]);
  await send(registry, 'setSubnodeOwner', [ZeroHash, id('eth'), owner.address]);
  return {
    registry: registry.target,
    async register(name, address) {
      const normalized = ensNormalize(name);
      const [label, ...parent] = normalized.split('.');
      await send(registry, 'setSubnodeOwner', [namehash(parent.join('.')), id(label!), owner.address]);
      await send(registry, 'setResolver', [namehash(normalized), resolver.target]);
      await send(resolver, 'setAddr', [namehash(normalized), address]);
    },
    async setReverse(wallet, name) {
      await send(reverse, 'setName', [name], wallet);
    },
  };
}

/** The factory and helpers for contract wallets: deployed (EIP-1271) or counterfactual (ERC-6492). */
export async function deployWallets(chain: TestChain) {
  const factory = await chain.deploy('WalletFactory');
  const walletAbi = compileContracts().Wallet1271!.abi;
  return {
    factory,
    /** A Wallet1271 owned by `owner`, deployed now. */
    async deployed(owner: string, salt = id(`deployed:${owner}`)): Promise<string> {
      await send(factory, 'deploy', [owner, salt]);
      return view<string>(factory, 'addressOf', [owner, salt]);
    },
    /** Where a Wallet1271 owned by `owner` will be; nothing is deployed. */
    counterfactual(owner: string, salt = id(`later:${owner}`)): Promise<string> {
      return view<string>(factory, 'addressOf', [owner, salt]);
    },
    /** Wraps a signature for a not yet deployed wallet: how to deploy it, then the signature (ERC-6492). */
    wrap6492(owner: string, innerSignature: string, salt = id(`later:${owner}`)): string {
      const calldata = factory.interface.encodeFunctionData('deploy', [owner, salt]);
      const encoded = AbiCoder.defaultAbiCoder().encode(['address', 'bytes', 'bytes'], [factory.target, calldata, innerSignature]);
      return concat([encoded, ERC6492_MAGIC]);
    },
    contract: (address: string) => new Contract(address, walletAbi, chain.provider),
  };
}
