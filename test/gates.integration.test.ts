import { Wallet, parseEther, type BaseContract, type HDNodeWallet } from 'ethers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TokenGate } from '../protocol/index.ts';
import { RequestError, TestClient } from '../testkit/client.ts';
import { send } from '../testkit/chain/deployments.ts';
import { startTestChain, type TestChain } from '../testkit/chain/node.ts';
import { migrate, startNode, type NodeProcess } from '../testkit/node.ts';
import { createTestDatabase } from '../testkit/pg.ts';
import { freePortBase } from '../testkit/ports.ts';
import { REDIS_URL, clearPrefix, testPrefix } from '../testkit/redis.ts';

/** Members are checked again this often; the test's waits are sized on it. */
const RECHECK_SEC = 3;
/** Chain reads are reused this long: a transfer shows after it. */
const CACHE_SEC = 1;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Token gates on groups and their calls through a real signaling node, a real SFU node and
 * a real local EVM node (ganache): admission fails closed, a transfer away ends membership
 * and call media, and an RPC outage refuses new members but keeps current ones (grace).
 */
describe('token-gated groups on a local chain', () => {
  let chain: TestChain;
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let token: BaseContract & { target: string };
  let node: NodeProcess;
  const procs: NodeProcess[] = [];
  const clients: TestClient[] = [];
  const prefix = testPrefix('gates');
  let gate: TokenGate;

  const codeOf = (p: Promise<unknown>) =>
    p.then(
      () => 'ok',
      (e: unknown) => (e instanceof RequestError ? e.body.code : String(e)),
    );
  /** The deployer's transactions, one at a time (each takes the next nonce). */
  let deployerQueue: Promise<unknown> = Promise.resolve();
  const byDeployer = (fn: () => Promise<unknown>) => (deployerQueue = deployerQueue.then(fn));
  /** A user with gas money (to move tokens away) and `tokens` tokens. */
  const user = async (tokens: number) => {
    const wallet = Wallet.createRandom().connect(chain.provider);
    await byDeployer(async () => {
      await (await chain.accounts[0]!.sendTransaction({ to: wallet.address, value: parseEther('1') })).wait();
      if (tokens) await send(token, 'mint', [wallet.address, tokens]);
    });
    const c = await TestClient.signInAndConnect(node.url, wallet);
    clients.push(c);
    return c as TestClient & { wallet: HDNodeWallet };
  };
  const giveAway = (c: { wallet: HDNodeWallet }, amount: number) => send(token, 'transfer', [chain.accounts[7]!.address, amount], c.wallet as unknown as Wallet);
  /** Invited by `admin`, then accepting: the way a stranger joins. */
  const join = async (admin: TestClient, group: string, c: TestClient) => {
    await admin.request('group.addMembers', { group, members: [c.address] });
    await c.waitFor('group.membership', (m) => m.group.id === group && m.state === 'invited');
    return c.request('group.accept', { group });
  };

  beforeAll(async () => {
    [chain, db] = await Promise.all([startTestChain(), createTestDatabase('gates')]);
    await migrate(db.url);
    token = await chain.deploy('TestToken20');
    gate = { match: 'any', rules: [{ standard: 'erc20', chainId: chain.chainId, contract: token.target, minAmount: '100' }] };
    const common = { DATABASE_URL: db.url, DB_POOL_SIZE: '3', REDIS_URL, REDIS_KEY_PREFIX: prefix, SFU_COMMAND_TIMEOUT_MS: '3000' };
    const sfu = startNode('sfu', { ...common, SFU_WORKERS: '1', SFU_PORT_BASE: String(await freePortBase(1)) });
    node = await startNode('signaling', {
      ...common,
      RATE_LIMIT_AUTH: '10000/60',
      RATE_LIMIT_CONNECT: '10000/60',
      WS_MAX_FRAMES_PER_SECOND: '500',
      CHAIN_RPC_URLS: `${chain.chainId}=${chain.url}`,
      CHAIN_RPC_TIMEOUT_MS: '1000',
      CHAIN_RPC_RETRIES: '1',
      CHAIN_CACHE_TTL_SECONDS: String(CACHE_SEC),
      GATE_RECHECK_SECONDS: String(RECHECK_SEC),
      GATE_GRACE_SECONDS: '3600',
    });
    procs.push(node, await sfu);
  });

  afterAll(async () => {
    for (const c of clients) c.ws.terminate();
    await Promise.all(procs.map((n) => n.kill('SIGKILL')));
    await clearPrefix(prefix);
    await db?.drop();
    await chain?.close();
  });

  it('admits holders, refuses a non-holder with GATE_NOT_MET, and shows the gate; only admins set it', async () => {
    const [alice, bob, carol] = await Promise.all([user(100), user(150), user(0)]);
    // A creator who does not pass the gate would lock themselves out.
    expect(await codeOf(carol.request('group.create', { name: 'no', gate }))).toBe('GATE_NOT_MET');
    const { group } = await alice.request('group.create', { name: 'holders', gate });
    expect(group.gate).toEqual(gate);
    expect((await join(alice, group.id, bob)).group.gate).toEqual(gate);
    expect(await codeOf(join(alice, group.id, carol))).toBe('GATE_NOT_MET');
    expect((await alice.request('group.get', { group: group.id })).members.map((m) => m.address).sort()).toEqual([alice.address, bob.address, carol.address].sort());
    expect((await bob.request('group.list', {})).groups.find((g) => g.id === group.id)?.gate).toEqual(gate);
    expect(await codeOf(bob.request('group.update', { group: group.id, gate: null }))).toBe('NOT_GROUP_ADMIN');
    // Cleared and set again by the admin; each change is a system message carrying the rule.
    await alice.request('group.update', { group: group.id, gate: null });
    const set = bob.waitFor('group.message', (m) => m.group === group.id && m.system?.action === 'updated' && m.system.gate !== undefined && m.system.gate !== null);
    await alice.request('group.update', { group: group.id, gate });
    expect((await set).system?.gate).toEqual(gate);
  });

  it('refuses call media and TURN to a member who no longer holds, and drops them from the running call', async () => {
    const [alice, dave, erin] = await Promise.all([user(100), user(100), user(100)]);
    const { group } = await alice.request('group.create', { name: 'call', gate });
    await join(alice, group.id, dave);
    await join(alice, group.id, erin);
    const { callId } = await alice.request('group.call', { group: group.id, kind: 'audio' });
    await alice.request('call.join', { callId, device: 'a' });
    await dave.request('call.join', { callId, device: 'd' });
    expect(await dave.request('call.turnCredentials', { callId })).toHaveProperty('iceServers');

    // Both move their tokens away; once the cache passes, their next call request sees it
    // (before the periodic recheck, which would remove them first: checked within RECHECK_SEC).
    await Promise.all([giveAway(dave, 100), giveAway(erin, 100)]);
    await sleep(CACHE_SEC * 1000 + 200);
    const daveLeft = alice.waitFor('call.participant', (p) => p.callId === callId && p.address === dave.address && p.state === 'left');
    const daveRemoved = dave.waitFor('group.membership', (m) => m.group.id === group.id && m.state === 'removed');
    expect(await codeOf(dave.request('call.turnCredentials', { callId }))).toBe('GATE_NOT_MET');
    expect(await codeOf(erin.request('call.join', { callId, device: 'e' }))).toBe('GATE_NOT_MET');
    expect((await daveRemoved).reason).toBe('gate-not-met');
    await daveLeft;
    expect(await codeOf(dave.request('call.join', { callId, device: 'd' }))).toBe('CALL_NOT_ALLOWED');
  });

  it('removes a member who transferred the token away at the periodic recheck, with a system message', async () => {
    const [alice, bob] = await Promise.all([user(100), user(100)]);
    const { group } = await alice.request('group.create', { name: 'recheck', gate });
    await join(alice, group.id, bob);
    const removed = bob.waitFor('group.membership', (m) => m.group.id === group.id && m.state === 'removed', (RECHECK_SEC * 3 + 5) * 1000);
    const told = alice.waitFor('group.message', (m) => m.group === group.id && m.system?.action === 'removed', (RECHECK_SEC * 3 + 5) * 1000);
    await giveAway(bob, 100);
    expect((await removed).reason).toBe('gate-not-met');
    expect((await told).system).toMatchObject({ action: 'removed', by: bob.address, members: [bob.address], reason: 'gate-not-met' });
    expect(await codeOf(bob.request('group.send', { group: group.id, clientId: 'after-removal', kind: 'text', text: 'hi' }))).toBe('NOT_GROUP_MEMBER');
    // Alice still holds: still a member.
    expect((await alice.request('group.get', { group: group.id })).group.memberCount).toBe(1);
  }, 30_000);

  it('with the RPC down, refuses new members (CHAIN_UNAVAILABLE) and keeps current ones within the grace', async () => {
    const [alice, frank] = await Promise.all([user(100), user(100)]);
    const { group } = await alice.request('group.create', { name: 'outage', gate });
    await alice.request('group.addMembers', { group: group.id, members: [frank.address] });
    await frank.waitFor('group.membership', (m) => m.group.id === group.id && m.state === 'invited');
    const { callId } = await alice.request('group.call', { group: group.id, kind: 'audio' });
    await chain.stop();
    await sleep(CACHE_SEC * 1000 + 200);
    expect(await codeOf(frank.request('group.accept', { group: group.id }))).toBe('CHAIN_UNAVAILABLE');
    // Past a recheck period: the sweep found the chain down and kept alice (grace).
    await sleep(RECHECK_SEC * 1000 + 1500);
    expect((await alice.request('group.get', { group: group.id })).group.memberCount).toBe(1);
    await alice.request('group.send', { group: group.id, clientId: 'during-outage', kind: 'text', text: 'still here' });
    expect(await alice.request('call.join', { callId, device: 'a' })).toHaveProperty('rtpCapabilities');
  }, 30_000);
});
