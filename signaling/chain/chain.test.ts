import { Wallet, hashMessage, id } from 'ethers';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../config/config.ts';
import { BlockRtcError } from '../../protocol/errors.ts';
import type { TokenGate } from '../../protocol/index.ts';
import { deployEns, deployWallets, send, view, type TestEns } from '../../testkit/chain/deployments.ts';
import { startSilentEndpoint, startTestChain, type TestChain } from '../../testkit/chain/node.ts';
import { EnsNames } from './ens.ts';
import { GateAccess } from './gate-policy.ts';
import { GateEvaluator } from './gates.ts';
import { ChainRpc } from './rpc.ts';
import { ContractSignatures } from './signatures.ts';

const unexpected = (): never => {
  throw new Error('expected a refusal');
};

const log = pino({ level: 'silent' });
const DEAD_CHAIN = 999_001;
const SILENT_CHAIN = 999_002;
const UNCONFIGURED_CHAIN = 999_003;

/** Contract-wallet signatures, ENS and token gates against a real local EVM node. */
describe('chain reads on a local EVM node', () => {
  let chain: TestChain;
  let ens: TestEns;
  let wallets: Awaited<ReturnType<typeof deployWallets>>;
  let silent: Awaited<ReturnType<typeof startSilentEndpoint>>;
  let rpc: ChainRpc;
  const settings = (over: Partial<Config['chain']> = {}): Config['chain'] => ({
    rpcUrls: new Map([
      [chain.chainId, chain.url],
      // Nothing listens there: connections are refused.
      [DEAD_CHAIN, 'http://127.0.0.1:9'],
      [SILENT_CHAIN, silent.url],
    ]),
    rpcTimeoutMs: 300,
    rpcRetries: 1,
    cacheTtlSec: 1,
    ens: { chainId: chain.chainId, registry: ens.registry, ttlSec: 1 },
    gateGraceSec: 60,
    gateRecheckSec: 300,
    ...over,
  });
  const codeOf = (p: Promise<unknown>) => p.then(
    () => 'ok',
    (e: unknown) => (e instanceof BlockRtcError ? e.code : String(e)),
  );

  beforeAll(async () => {
    chain = await startTestChain();
    silent = await startSilentEndpoint();
    [ens, wallets] = [await deployEns(chain), await deployWallets(chain)];
    rpc = new ChainRpc(settings(), log);
  });

  afterAll(async () => {
    rpc?.close();
    await silent?.close();
    await chain?.close();
  });

  describe('contract-wallet signatures', () => {
    const message = 'Sign in to BlockRTC, nonce 1';
    const hash = hashMessage(message);

    it('accepts what a deployed EIP-1271 wallet accepts and refuses another key', async () => {
      const owner = Wallet.createRandom();
      const wallet = await wallets.deployed(owner.address);
      const sigs = new ContractSignatures(rpc);
      expect(await sigs.isValidSignature(chain.chainId, wallet, hash, await owner.signMessage(message))).toBe(true);
      expect(await sigs.isValidSignature(chain.chainId, wallet, hash, await Wallet.createRandom().signMessage(message))).toBe(false);
      // Signed for another message.
      expect(await sigs.isValidSignature(chain.chainId, wallet, hash, await owner.signMessage('other'))).toBe(false);
    });

    it('accepts an ERC-6492 signature of a wallet not deployed yet, without deploying it', async () => {
      const owner = Wallet.createRandom();
      const address = await wallets.counterfactual(owner.address);
      const sigs = new ContractSignatures(rpc);
      expect(await chain.provider.getCode(address)).toBe('0x');
      expect(await sigs.isValidSignature(chain.chainId, address, hash, wallets.wrap6492(owner.address, await owner.signMessage(message)))).toBe(true);
      const forged = wallets.wrap6492(owner.address, await Wallet.createRandom().signMessage(message));
      expect(await sigs.isValidSignature(chain.chainId, address, hash, forged)).toBe(false);
      // A wrapper whose factory call deploys someone else's wallet does not vouch for this address.
      const other = Wallet.createRandom();
      expect(await sigs.isValidSignature(chain.chainId, address, hash, wallets.wrap6492(other.address, await other.signMessage(message), id(`later:${owner.address}`)))).toBe(false);
      expect(await chain.provider.getCode(address)).toBe('0x');
    });

    it('refuses an address without code and a contract that is not a wallet', async () => {
      const sigs = new ContractSignatures(rpc);
      const key = Wallet.createRandom();
      expect(await sigs.isValidSignature(chain.chainId, Wallet.createRandom().address, hash, await key.signMessage(message))).toBe(false);
      const token = await chain.deploy('TestToken20');
      expect(await sigs.isValidSignature(chain.chainId, token.target, hash, await key.signMessage(message))).toBe(false);
    });

    it('answers CHAIN_NOT_CONFIGURED and CHAIN_UNAVAILABLE (refused or timed out)', async () => {
      const sigs = new ContractSignatures(rpc);
      const sig = await Wallet.createRandom().signMessage(message);
      const address = Wallet.createRandom().address;
      expect(sigs.supports(UNCONFIGURED_CHAIN)).toBe(false);
      expect(await codeOf(sigs.isValidSignature(UNCONFIGURED_CHAIN, address, hash, sig))).toBe('CHAIN_NOT_CONFIGURED');
      expect(await codeOf(sigs.isValidSignature(DEAD_CHAIN, address, hash, sig))).toBe('CHAIN_UNAVAILABLE');
      const started = Date.now();
      const err = await sigs.isValidSignature(SILENT_CHAIN, address, hash, sig).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BlockRtcError);
      expect((err as BlockRtcError).code).toBe('CHAIN_UNAVAILABLE');
      expect((err as BlockRtcError).message).toMatch(/timed out/);
      // Two attempts of 300 ms and one backoff.
      expect(Date.now() - started).toBeLessThan(3000);
    });
  });

  describe('ENS', () => {
    it('names an address whose reverse record is confirmed by its forward record, and resolves names', async () => {
      const [alice, bob, carol] = [chain.accounts[1]!, chain.accounts[2]!, chain.accounts[3]!];
      await ens.register('alice.eth', alice.address);
      await ens.setReverse(alice, 'alice.eth');
      // Bob claims Alice's name: its forward record points at Alice, so Bob has no name.
      await ens.setReverse(bob, 'alice.eth');
      const names = new EnsNames(rpc, settings().ens, log);
      const res = await names.names([alice.address, bob.address, carol.address]);
      expect(res).toEqual({
        incomplete: false,
        names: [
          { address: alice.address, name: 'alice.eth' },
          { address: bob.address, name: null },
          { address: carol.address, name: null },
        ],
      });
      expect(await names.resolve('ALICE.eth')).toEqual({ name: 'alice.eth', address: alice.address });
      expect(await codeOf(names.resolve('nobody.eth'))).toBe('ENS_NAME_NOT_FOUND');
    });

    it('keeps serving known names while the chain is down, and says when some could not be looked up', async () => {
      // A chain of its own, stopped halfway.
      const other = await startTestChain();
      try {
        const otherEns = await deployEns(other);
        const dave = other.accounts[4]!;
        await otherEns.register('dave.eth', dave.address);
        await otherEns.setReverse(dave, 'dave.eth');
        const ensSettings = { chainId: other.chainId, registry: otherEns.registry, ttlSec: 1 };
        const otherRpc = new ChainRpc(settings({ rpcUrls: new Map([[other.chainId, other.url]]), ens: ensSettings }), log);
        const names = new EnsNames(otherRpc, ensSettings, log);
        expect((await names.names([dave.address])).names[0]!.name).toBe('dave.eth');
        await other.stop();
        await new Promise((r) => setTimeout(r, 1100));
        const stranger = Wallet.createRandom().address;
        // Past its TTL the known name is served at once (refreshed in the background, which fails).
        const res = await names.names([dave.address, stranger]);
        expect(res).toEqual({ incomplete: true, names: [{ address: dave.address, name: 'dave.eth' }, { address: stranger, name: null }] });
        expect(await codeOf(names.resolve('dave.eth'))).toBe('CHAIN_UNAVAILABLE');
        otherRpc.close();
      } finally {
        await other.close();
      }
    });

    it('names the missing setting when the ENS chain has no endpoint or no registry', async () => {
      const noEndpoint = new EnsNames(rpc, { chainId: UNCONFIGURED_CHAIN, registry: null, ttlSec: 60 }, log);
      const err = await noEndpoint.names([chain.accounts[1]!.address]).then(unexpected, (e: unknown) => e as BlockRtcError);
      expect(err.code).toBe('CHAIN_NOT_CONFIGURED');
      expect(err.message).toMatch(/CHAIN_RPC_URLS/);
      const noRegistry = new EnsNames(new ChainRpc(settings({ ens: { chainId: 31337, registry: null, ttlSec: 60 }, rpcUrls: new Map([[31337, chain.url]]) }), log), { chainId: 31337, registry: null, ttlSec: 60 }, log);
      const err2 = await noRegistry.resolve('alice.eth').then(unexpected, (e: unknown) => e as BlockRtcError);
      expect(err2.code).toBe('CHAIN_NOT_CONFIGURED');
      expect(err2.message).toMatch(/ENS_REGISTRY/);
    });
  });

  describe('token gates', () => {
    let erc20: Awaited<ReturnType<TestChain['deploy']>>;
    let erc721: Awaited<ReturnType<TestChain['deploy']>>;
    let erc1155: Awaited<ReturnType<TestChain['deploy']>>;
    let holder: Wallet;
    let other: Wallet;

    beforeAll(async () => {
      [holder, other] = [chain.accounts[5]!, chain.accounts[6]!];
      erc20 = await chain.deploy('TestToken20');
      erc721 = await chain.deploy('TestNft721');
      erc1155 = await chain.deploy('TestMulti1155');
      await send(erc20, 'mint', [holder.address, 100n]);
      await send(erc721, 'mint', [holder.address, 7n]);
      await send(erc1155, 'mint', [holder.address, 3n, 5n]);
    });

    const rules = () => ({
      erc20: { standard: 'erc20', chainId: chain.chainId, contract: erc20.target, minAmount: '100' },
      erc721Any: { standard: 'erc721', chainId: chain.chainId, contract: erc721.target },
      erc721Id: { standard: 'erc721', chainId: chain.chainId, contract: erc721.target, tokenId: '7' },
      erc1155: { standard: 'erc1155', chainId: chain.chainId, contract: erc1155.target, tokenId: '3', minAmount: '5' },
    }) as const;
    const gate = (match: 'any' | 'all', ...r: TokenGate['rules']): TokenGate => ({ match, rules: r });

    it('admits a holder and refuses a non-holder, for each standard', async () => {
      const gates = new GateEvaluator(rpc, 60);
      for (const rule of Object.values(rules())) {
        expect((await gates.checkGate(gate('all', rule), holder.address)).allowed).toBe(true);
        expect((await gates.checkGate(gate('all', rule), other.address)).allowed).toBe(false);
      }
      // Not enough: 99 of 100 needed.
      await send(erc20, 'mint', [other.address, 99n]);
      expect((await new GateEvaluator(rpc, 60).checkGate(gate('all', rules().erc20), other.address)).allowed).toBe(false);
      // A token id nobody holds (ownerOf reverts) and a contract that is no token.
      const missing = { ...rules().erc721Id, tokenId: '8' };
      expect((await gates.checkGate(gate('any', missing), holder.address)).allowed).toBe(false);
      expect((await gates.checkGate(gate('any', { ...rules().erc20, contract: ens.registry }), holder.address)).allowed).toBe(false);
    });

    it('combines rules with any-of and all-of', async () => {
      const gates = new GateEvaluator(rpc, 60);
      await send(erc1155, 'mint', [other.address, 3n, 5n]);
      const both = gate('all', rules().erc721Any, rules().erc1155);
      const either = gate('any', rules().erc721Any, rules().erc1155);
      expect((await gates.checkGate(both, holder.address)).allowed).toBe(true);
      expect((await gates.checkGate(both, other.address)).allowed).toBe(false);
      expect((await gates.checkGate(either, other.address)).allowed).toBe(true);
    });

    it('notices a transfer once the cache TTL has passed', async () => {
      const gates = new GateEvaluator(rpc, 1);
      const nft = gate('any', rules().erc721Id);
      const receiver = chain.accounts[7]!;
      expect((await gates.checkGate(nft, holder.address)).allowed).toBe(true);
      await send(erc721, 'transferFrom', [holder.address, receiver.address, 7n], holder);
      // Within the TTL the cached owner still counts.
      expect((await gates.checkGate(nft, holder.address)).allowed).toBe(true);
      await new Promise((r) => setTimeout(r, 1100));
      expect((await gates.checkGate(nft, holder.address)).allowed).toBe(false);
      expect((await gates.checkGate(nft, receiver.address)).allowed).toBe(true);
      await send(erc721, 'transferFrom', [receiver.address, holder.address, 7n], receiver);
    });

    it('throws the chain error only when the readable rules cannot decide', async () => {
      const gates = new GateEvaluator(rpc, 60);
      const down = { ...rules().erc20, chainId: DEAD_CHAIN };
      const unconfigured = { ...rules().erc20, chainId: UNCONFIGURED_CHAIN };
      expect(await codeOf(gates.checkGate(gate('any', down), holder.address))).toBe('CHAIN_UNAVAILABLE');
      expect(await codeOf(gates.checkGate(gate('all', unconfigured), holder.address))).toBe('CHAIN_NOT_CONFIGURED');
      // One held rule settles any-of; one missing rule settles all-of.
      expect((await gates.checkGate(gate('any', down, rules().erc1155), holder.address)).allowed).toBe(true);
      expect((await gates.checkGate(gate('all', down, rules().erc721Id), other.address)).allowed).toBe(false);
      expect(await codeOf(gates.checkGate(gate('all', down, rules().erc1155), holder.address))).toBe('CHAIN_UNAVAILABLE');
    });

    it('fails new joins closed and keeps existing members for the grace period', async () => {
      let now = 1_000_000;
      const access = new GateAccess(new GateEvaluator(rpc, 60), 60_000, () => now);
      const ok = gate('any', rules().erc1155);
      const down = gate('any', { ...rules().erc1155, chainId: DEAD_CHAIN });
      expect(await access.admit(ok, holder.address)).toBe(now);
      expect(await codeOf(access.admit(ok, chain.accounts[4]!.address))).toBe('GATE_NOT_MET');
      expect(await codeOf(access.admit(down, holder.address))).toBe('CHAIN_UNAVAILABLE');

      expect(await access.recheck(ok, holder.address, now - 5000)).toEqual({ access: 'keep', verifiedAt: now });
      expect(await access.recheck(ok, chain.accounts[4]!.address, now)).toEqual({ access: 'revoke', reason: 'not-met' });
      const verified = now;
      now += 59_000;
      const grace = await access.recheck(down, holder.address, verified);
      expect(grace).toMatchObject({ access: 'grace', verifiedAt: verified, until: verified + 60_000 });
      now += 1000;
      expect(await access.recheck(down, holder.address, verified)).toEqual({ access: 'revoke', reason: 'chain-unavailable' });
      expect(await view<bigint>(erc1155, 'balanceOf', [holder.address, 3n])).toBe(5n);
    });
  });
});
