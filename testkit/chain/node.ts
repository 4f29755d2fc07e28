import { createServer, type Server, type Socket } from 'node:net';
import { ContractFactory, JsonRpcProvider, Network, Wallet, type BaseContract, type ContractRunner } from 'ethers';
import ganache from 'ganache';
import { compileContracts } from './compile.ts';

export const TEST_CHAIN_ID = 1337;

export interface TestChain {
  /** JSON-RPC endpoint, e.g. for CHAIN_RPC_URLS=`1337=<url>`. */
  url: string;
  chainId: number;
  provider: JsonRpcProvider;
  /** Funded accounts (deterministic keys). */
  accounts: Wallet[];
  /** Deploys a contract of testkit/chain/contracts by name, from the first account unless told. */
  deploy(name: string, args?: unknown[], from?: Wallet): Promise<BaseContract & { target: string }>;
  /** Stops answering for good: the port is closed, connections are refused. */
  stop(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A real local EVM JSON-RPC node (ganache, in this process) on a spare port; every
 * transaction is mined as it is sent. Contracts come from Solidity compiled in the test run
 * (cached, see compile.ts).
 */
export async function startTestChain(): Promise<TestChain> {
  const server = ganache.server({
    logging: { quiet: true },
    chain: { chainId: TEST_CHAIN_ID, hardfork: 'shanghai' },
    wallet: { deterministic: true, totalAccounts: 8 },
    miner: { instamine: 'eager' },
  });
  await server.listen(0, '127.0.0.1');
  const { port } = server.address() as { port: number };
  const url = `http://127.0.0.1:${port}`;
  const network = new Network('test', TEST_CHAIN_ID);
  const provider = new JsonRpcProvider(url, network, { staticNetwork: network, pollingInterval: 50, cacheTimeout: -1 });
  const initial = await server.provider.getInitialAccounts();
  const accounts = Object.values(initial).map((a) => new Wallet(a.secretKey, provider));
  let stopped = false;
  const artifacts = compileContracts();

  return {
    url,
    chainId: TEST_CHAIN_ID,
    provider,
    accounts,
    async deploy(name, args = [], from = accounts[0]!) {
      const artifact = artifacts[name];
      if (!artifact) throw new Error(`no contract ${name} in testkit/chain/contracts`);
      const contract = await new ContractFactory(artifact.abi, artifact.bytecode, from as ContractRunner).deploy(...args);
      await contract.waitForDeployment();
      return contract as BaseContract & { target: string };
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await server.close();
    },
    async close() {
      provider.destroy();
      if (!stopped) await server.close();
    },
  };
}

/**
 * A TCP port that accepts connections and never answers: an RPC endpoint that hangs, for
 * timeout behaviour.
 */
export async function startSilentEndpoint(): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
