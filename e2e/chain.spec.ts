import { expect, test } from '@playwright/test';
import { Wallet, type BaseContract, type HDNodeWallet } from 'ethers';
import { deployEns, deployWallets, send } from '../testkit/chain/deployments.ts';
import { startTestChain, type TestChain } from '../testkit/chain/node.ts';
import { closeAll, newPeer, signIn, type Peer } from './support/peers.ts';
import { Cluster, type Web } from './support/servers.ts';

/**
 * Chain features in the browser, against a local EVM node (ganache) started here: a
 * contract (EIP-1271) wallet signs in through the injected provider (its owner key signs,
 * the address is the contract's), ENS names show in the contact list and the chat header,
 * and a token-gated group refuses a non-holder and removes (with a notice in the app) a
 * member who moved the tokens away.
 */
let chain: TestChain;
let cluster: Cluster;
let web: Web;
let token: BaseContract & { target: string };
let wallets: Awaited<ReturnType<typeof deployWallets>>;
const peers: Peer[] = [];

test.beforeAll(async () => {
  test.setTimeout(120_000);
  chain = await startTestChain();
  const ens = await deployEns(chain);
  wallets = await deployWallets(chain);
  token = await chain.deploy('TestToken20');
  // bob.eth names an ordinary account (reverse record confirmed by the forward one).
  const bob = chain.accounts[1]!;
  await ens.register('bob.eth', bob.address);
  await ens.setReverse(bob, 'bob.eth');
  cluster = new Cluster();
  await cluster.init();
  web = await cluster.signaling({
    AUTH_CHAIN_IDS: `1,${chain.chainId}`,
    CHAIN_RPC_URLS: `${chain.chainId}=${chain.url}`,
    ENS_CHAIN_ID: String(chain.chainId),
    ENS_REGISTRY: ens.registry,
    CHAIN_CACHE_TTL_SECONDS: '1',
    GATE_RECHECK_SECONDS: '2',
  });
});

test.afterAll(async () => {
  await closeAll(peers);
  await cluster?.stop();
  await chain?.close();
});

test('a contract wallet signs in, sees ENS names; a token gate refuses a non-holder and removes a member who moved the tokens away', async ({ browser }) => {
  const owner = Wallet.createRandom();
  const contractWallet = await wallets.deployed(owner.address);
  await send(token, 'mint', [contractWallet, 100]);
  const holder = await newPeer(browser, web.url, 'contract-wallet', owner, { address: contractWallet, chainId: chain.chainId });
  peers.push(holder);
  await signIn(holder);
  expect(await holder.page.evaluate(() => window.blockrtc!.address)).toBe(contractWallet);

  // ENS: the contact added by name shows its name, in the list and in the chat header.
  const bob = chain.accounts[1]!.address;
  await holder.page.getByTestId('add-contact-input').fill('bob.eth');
  await holder.page.getByTestId('add-contact-btn').click();
  await expect(holder.page.locator(`[data-testid=contact][data-address="${bob}"]`)).toContainText('bob.eth');
  await expect(holder.page.getByTestId('chat-peer')).toHaveText('bob.eth');

  // A gated group, set through the SDK (the group screens place the badge and editor).
  const stranger = await newPeer(browser, web.url, 'non-holder');
  peers.push(stranger);
  await signIn(stranger);
  const rule = { standard: 'erc20' as const, chainId: chain.chainId, contract: token.target, minAmount: '100' };
  const group = await holder.page.evaluate(
    async ({ rule, invitee }) => {
      const c = window.blockrtc!;
      const { group } = await c.signal.request('group.create', { name: 'holders', members: [invitee] });
      return (await c.gates.set(group.id, rule)).id;
    },
    { rule, invitee: stranger.address },
  );
  // The non-holder answers the invitation in the app: refused, and told why.
  await stranger.page.locator(`[data-testid=group-row][data-group="${group}"]`).click();
  await stranger.page.getByTestId('group-accept').click();
  await expect(stranger.page.getByRole('status').filter({ hasText: 'do not hold the tokens' })).toBeVisible({ timeout: 15_000 });
  const refused = await stranger.page.evaluate(async (g) => {
    try {
      await window.blockrtc!.signal.request('group.accept', { group: g });
      return 'accepted';
    } catch (err) {
      return (err as { code?: string }).code ?? String(err);
    }
  }, group);
  expect(refused).toBe('GATE_NOT_MET');
  // Everyone sees the rule on the group; its admin gets the editor.
  await holder.page.locator(`[data-testid=group-row][data-group="${group}"]`).click();
  await holder.page.getByTestId('group-members-btn').click();
  await expect(holder.page.getByTestId('group-panel').getByTestId('gate-badge')).toContainText('100');
  await expect(holder.page.getByTestId('group-panel').getByTestId('gate-contract')).toHaveValue(token.target);
  const shown = await holder.page.evaluate(async (g) => (await window.blockrtc!.signal.request('group.get', { group: g })).group.gate, group);
  expect(shown).toEqual({ match: 'any', rules: [rule] });

  // A holder joins; once they move the tokens away, the recheck removes them and the app says why.
  const carolWallet = chain.accounts[2]!;
  await send(token, 'mint', [carolWallet.address, 100]);
  const carol = await newPeer(browser, web.url, 'holder-then-not', carolWallet as unknown as HDNodeWallet);
  peers.push(carol);
  await signIn(carol);
  await holder.page.evaluate(async ({ g, a }) => void (await window.blockrtc!.signal.request('group.addMembers', { group: g, members: [a] })), { g: group, a: carol.address });
  expect(await carol.page.evaluate(async (g) => (await window.blockrtc!.signal.request('group.accept', { group: g })).group.id, group)).toBe(group);
  await send(token, 'transfer', [chain.accounts[7]!.address, 100], carolWallet);
  await expect(carol.page.getByRole('status').filter({ hasText: 'no longer hold the tokens' })).toBeVisible({ timeout: 15_000 });
});
