import { Wallet } from 'ethers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RequestError, TestClient, signIn } from '../testkit/client.ts';
import { deployEns, deployWallets, type TestEns } from '../testkit/chain/deployments.ts';
import { startSilentEndpoint, startTestChain, type TestChain } from '../testkit/chain/node.ts';
import { migrate, startNode, type NodeProcess } from '../testkit/node.ts';
import { createTestDatabase } from '../testkit/pg.ts';
import { REDIS_URL, clearPrefix, testPrefix } from '../testkit/redis.ts';

const unexpected = (): never => {
  throw new Error('expected a refusal');
};

/**
 * Chain-aware identity through a real signaling node (child process) and a real local EVM
 * node: contract wallets sign in over HTTP, ENS names come back over the WebSocket, and an
 * endpoint that is missing, refuses or hangs gives the documented errors.
 */
describe('chain-aware identity on a signaling node', () => {
  let chain: TestChain;
  let ens: TestEns;
  let wallets: Awaited<ReturnType<typeof deployWallets>>;
  let silent: Awaited<ReturnType<typeof startSilentEndpoint>>;
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  const prefix = testPrefix('chain');
  const started: NodeProcess[] = [];
  const clients: TestClient[] = [];
  let node: NodeProcess;
  /** No CHAIN_RPC_URLS at all. */
  let bare: NodeProcess;
  /** An endpoint that accepts connections and never answers. */
  let hanging: NodeProcess;

  const boot = async (env: Record<string, string>) => {
    const n = await startNode('signaling', {
      DATABASE_URL: db.url,
      REDIS_URL,
      REDIS_KEY_PREFIX: prefix,
      RATE_LIMIT_AUTH: '10000/60',
      RATE_LIMIT_CONNECT: '10000/60',
      AUTH_CHAIN_IDS: `1,${chain.chainId}`,
      ...env,
    });
    started.push(n);
    return n;
  };
  const codeOf = (p: Promise<unknown>) => p.then(
    () => 'ok',
    (e: unknown) => (e instanceof RequestError ? e.body.code : String(e)),
  );

  beforeAll(async () => {
    [chain, silent, db] = await Promise.all([startTestChain(), startSilentEndpoint(), createTestDatabase('chain')]);
    await migrate(db.url);
    ens = await deployEns(chain);
    wallets = await deployWallets(chain);
    // Started together, before the tests: on a loaded machine a node takes a while to start.
    [node, bare, hanging] = await Promise.all([
      boot({
        CHAIN_RPC_URLS: `${chain.chainId}=${chain.url}`,
        CHAIN_RPC_TIMEOUT_MS: '2000',
        ENS_CHAIN_ID: String(chain.chainId),
        ENS_REGISTRY: ens.registry,
      }),
      boot({}),
      boot({ CHAIN_RPC_URLS: `${chain.chainId}=${silent.url}`, CHAIN_RPC_TIMEOUT_MS: '300', CHAIN_RPC_RETRIES: '1', ENS_CHAIN_ID: String(chain.chainId), ENS_REGISTRY: ens.registry }),
    ]);
  });

  afterAll(async () => {
    for (const c of clients) c.ws.terminate();
    await Promise.all(started.map((n) => n.kill('SIGKILL')));
    await clearPrefix(prefix);
    await db?.drop();
    await silent?.close();
    await chain?.close();
  });

  it('signs in a deployed EIP-1271 wallet and refuses a signature its owner did not make', async () => {
    const owner = Wallet.createRandom();
    const address = await wallets.deployed(owner.address);
    const chainId = chain.chainId;
    const t = await signIn(node.url, owner, { address, chainId });
    expect(t.address).toBe(address);
    const c = await TestClient.connect(node.url, t.token, t.address);
    clients.push(c);
    expect((await c.waitFor('session.hello')).address).toBe(address);
    expect(await codeOf(signIn(node.url, owner, { address, chainId, signer: Wallet.createRandom() }))).toBe('AUTH_BAD_SIGNATURE');
  });

  it('signs in a counterfactual (ERC-6492) wallet, leaves it undeployed, and refuses a wrong inner signature', async () => {
    const owner = Wallet.createRandom();
    const address = await wallets.counterfactual(owner.address);
    const wrap = (sig: string) => wallets.wrap6492(owner.address, sig);
    const chainId = chain.chainId;
    const t = await signIn(node.url, owner, { address, chainId, wrapSignature: wrap });
    expect(t.address).toBe(address);
    expect(await chain.provider.getCode(address)).toBe('0x');
    expect(await codeOf(signIn(node.url, owner, { address, chainId, wrapSignature: wrap, signer: Wallet.createRandom() }))).toBe('AUTH_BAD_SIGNATURE');
  });

  it('still signs EOAs in offline, on a chain with no endpoint', async () => {
    const w = Wallet.createRandom();
    expect((await signIn(node.url, w, { chainId: 1 })).address).toBe(w.address);
  });

  it('returns verified ENS names and resolves names over the WebSocket', async () => {
    const [alice, mallory] = [chain.accounts[1]!, chain.accounts[2]!];
    await ens.register('alice.eth', alice.address);
    await ens.setReverse(alice, 'alice.eth');
    await ens.setReverse(mallory, 'alice.eth');
    const c = await TestClient.signInAndConnect(node.url);
    clients.push(c);
    const res = await c.request('ens.names', { addresses: [alice.address, mallory.address.toLowerCase()] });
    expect(res).toEqual({ incomplete: false, names: [{ address: alice.address, name: 'alice.eth' }, { address: mallory.address, name: null }] });
    expect(await c.request('ens.resolve', { name: 'Alice.eth' })).toEqual({ name: 'alice.eth', address: alice.address });
    expect(await codeOf(c.request('ens.resolve', { name: 'nobody.eth' }))).toBe('ENS_NAME_NOT_FOUND');
    expect(await codeOf(c.request('ens.resolve', { name: 'not a name' }))).toBe('INVALID_FIELDS');
  });

  it('answers CHAIN_NOT_CONFIGURED without CHAIN_RPC_URLS and CHAIN_UNAVAILABLE when the endpoint hangs', async () => {
    const owner = Wallet.createRandom();
    const address = await wallets.counterfactual(owner.address);
    const wrap = (sig: string) => wallets.wrap6492(owner.address, sig);
    const chainId = chain.chainId;
    const err = await signIn(bare.url, owner, { address, chainId, wrapSignature: wrap }).then(unexpected, (e: unknown) => e as RequestError);
    expect(err.body.code).toBe('CHAIN_NOT_CONFIGURED');
    expect(err.body.message).toMatch(/CHAIN_RPC_URLS/);
    // A key-sized signature that matches nothing is just wrong there.
    expect(await codeOf(signIn(bare.url, owner, { address, chainId }))).toBe('AUTH_BAD_SIGNATURE');
    expect(await codeOf(signIn(hanging.url, owner, { address, chainId, wrapSignature: wrap }))).toBe('CHAIN_UNAVAILABLE');

    const onBare = await TestClient.signInAndConnect(bare.url);
    const onHanging = await TestClient.signInAndConnect(hanging.url);
    clients.push(onBare, onHanging);
    const someone = Wallet.createRandom().address;
    expect(await codeOf(onBare.request('ens.names', { addresses: [someone] }))).toBe('CHAIN_NOT_CONFIGURED');
    // A name lookup that cannot be made never fails the request: the name is null for now.
    expect(await onHanging.request('ens.names', { addresses: [someone] })).toEqual({ incomplete: true, names: [{ address: someone, name: null }] });
    expect(await codeOf(onHanging.request('ens.resolve', { name: 'alice.eth' }))).toBe('CHAIN_UNAVAILABLE');
    // No request failed as INTERNAL.
    expect([...bare.logs, ...hanging.logs].filter((l) => l.includes('request failed'))).toEqual([]);
  });
});
