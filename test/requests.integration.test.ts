import { Wallet, type HDNodeWallet } from 'ethers';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../config/config.ts';
import { openDatabase, type Database } from '../db/client.ts';
import { createLogger } from '../infra/logger.ts';
import { startSignaling, type SignalingNode } from '../signaling/node.ts';
import { RedisSfuRegistry } from '../sfu/registry/redis.ts';
import type { SfuRegistry } from '../sfu/registry/registry.ts';
import { RequestError, TestClient } from '../testkit/client.ts';
import { migrate, startNode, TEST_JWT_SECRET, type NodeProcess } from '../testkit/node.ts';
import { createTestDatabase } from '../testkit/pg.ts';
import { REDIS_URL, clearPrefix, testPrefix } from '../testkit/redis.ts';

/** How long an event that must not come is waited for. */
const QUIET_MS = 1200;
const RING_TIMEOUT_MS = 2000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Two URLs (the same one in embedded mode) and a media node in the registry, so calls ring. */
interface Deployment {
  a: string;
  b: string;
  registry: SfuRegistry;
  stop(): Promise<void>;
}

const env = {
  RATE_LIMIT_AUTH: '10000/60',
  RATE_LIMIT_CONNECT: '10000/60',
  RATE_LIMIT_MESSAGES: '1000/10',
  WS_MAX_FRAMES_PER_SECOND: '500',
  PRESENCE_HEARTBEAT_MS: '1000',
  PRESENCE_STALE_MS: '4000',
  CALL_RING_TIMEOUT_MS: String(RING_TIMEOUT_MS),
  SFU_COMMAND_TIMEOUT_MS: '1000',
};

/** Two signaling nodes (child processes) on PostgreSQL and Redis. */
async function scaledOut(): Promise<Deployment> {
  const db = await createTestDatabase('requests');
  await migrate(db.url);
  const prefix = testPrefix('requests');
  const boot = () => startNode('signaling', { ...env, DATABASE_URL: db.url, REDIS_URL, REDIS_KEY_PREFIX: prefix });
  const nodes: NodeProcess[] = await Promise.all([boot(), boot()]);
  const redis = new Redis(REDIS_URL);
  return {
    a: nodes[0]!.url,
    b: nodes[1]!.url,
    registry: new RedisSfuRegistry(redis, prefix, 4000, 500),
    async stop() {
      await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
      redis.disconnect();
      await clearPrefix(prefix);
      await db.drop();
    },
  };
}

/** Embedded: one process, in-process bus, PGlite. */
async function embedded(): Promise<Deployment> {
  const config = loadConfig('all', { ...env, HOST: '127.0.0.1', PORT: '0', METRICS_PORT: '0', JWT_SECRET: TEST_JWT_SECRET, DATA_DIR: 'memory://', LOG_LEVEL: 'warn', REDIS_URL: '', DATABASE_URL: '' });
  const database: Database = await openDatabase(config.db);
  await database.migrate();
  const node: SignalingNode = await startSignaling({ config, database, log: createLogger(config) });
  return {
    a: node.url,
    b: node.url,
    registry: node.backends.registry,
    async stop() {
      await node.close();
      await database.close();
    },
  };
}

describe.each([
  ['two signaling nodes on PostgreSQL and Redis', scaledOut],
  ['embedded mode (in-process bus, PGlite)', embedded],
] as const)('message requests and blocks: %s', (_label, deploy) => {
  let d: Deployment;
  let heartbeat: NodeJS.Timeout | undefined;
  const clients: TestClient[] = [];

  const connect = async (base: string, wallet: HDNodeWallet = Wallet.createRandom()) => {
    const c = await TestClient.signInAndConnect(base, wallet);
    clients.push(c);
    return c;
  };
  const code = (p: Promise<unknown>) => p.then(() => 'ok', (e: unknown) => (e instanceof RequestError ? e.body.code : String(e)));
  const presenceOf = async (asker: TestClient, address: string) => (await asker.request('presence.query', { addresses: [address] })).presence[0]!;
  const contactsOf = async (c: TestClient) => (await c.request('contacts.list', {})).contacts.map((x) => x.address);
  const requestsOf = async (c: TestClient) => (await c.request('requests.list', {})).requests.map((x) => x.address);

  beforeAll(async () => {
    d = await deploy();
    // A media node that only heartbeats: enough for call.start to place and ring.
    const beat = () => d.registry.heartbeat('fake-sfu', [{ index: 0, alive: true, consumers: 0, producers: 0, rooms: 0, cpu: 0 }], false, Date.now());
    await beat();
    heartbeat = setInterval(() => void beat().catch(() => undefined), 500);
  });

  afterAll(async () => {
    clearInterval(heartbeat);
    // Closed first, so the nodes' disconnect bookkeeping finishes before their database goes.
    await Promise.all(clients.map((c) => c.close()));
    await sleep(300);
    await d?.stop();
  });

  it('puts a stranger’s message in requests; the sender gets no receipts, typing or presence until accepted, then all of them', async () => {
    const x = await connect(d.a);
    const xPhone = await connect(d.b, x.wallet);
    const s = await connect(d.b);

    const first = await s.send(x.address, 'hello, we have not met');
    // The recipient sees it live: it is a request, not a hidden message.
    await x.waitFor('chat.message', (m) => m.id === first.id);
    await xPhone.waitFor('chat.message', (m) => m.id === first.id);
    expect(await contactsOf(x)).not.toContain(s.address);
    const { requests } = await x.request('requests.list', {});
    expect(requests).toEqual([
      {
        address: s.address,
        presence: { address: s.address, online: true, lastSeen: null },
        lastMessage: { id: first.id, from: s.address, kind: 'text', text: 'hello, we have not met', createdAt: first.createdAt },
        unread: 1,
      },
    ]);
    // The sender's own list has the conversation it started.
    expect(await contactsOf(s)).toEqual([x.address]);

    // The recipient acts inside the request: nothing of it reaches the sender.
    expect(await x.request('chat.delivered', { peer: s.address, ids: [first.id] })).toEqual({ updated: [first.id] });
    expect(await x.request('chat.read', { peer: s.address, upTo: first.id })).toEqual({ updated: [first.id] });
    await x.request('chat.typing', { to: s.address, typing: true });
    expect(await presenceOf(s, x.address)).toEqual({ address: x.address, online: null, lastSeen: null });
    // The recipient's other device still hears its own read.
    await xPhone.waitFor('chat.receipt', (r) => r.status === 'read' && r.ids.includes(first.id));
    await sleep(QUIET_MS);
    expect(s.eventsOf('chat.receipt')).toEqual([]);
    expect(s.eventsOf('chat.typing')).toEqual([]);
    expect(s.eventsOf('presence.update').filter((p) => p.address === x.address)).toEqual([]);
    // Nor by another road: the sender's history shows no ticks yet.
    expect((await s.request('chat.history', { peer: x.address })).messages[0]).toMatchObject({ id: first.id, deliveredAt: null, readAt: null });

    // Accepted on the phone (node b); node a, where x typed, must forget what it cached.
    const { contact } = await xPhone.request('requests.accept', { address: s.address });
    expect(contact).toMatchObject({ address: s.address, unread: 0, lastMessage: { id: first.id } });
    expect(await x.waitFor('requests.changed', (e) => e.address === s.address)).toEqual({ address: s.address, action: 'accepted' });
    expect(await s.waitFor('presence.update', (p) => p.address === x.address)).toEqual({ address: x.address, online: true, lastSeen: null });
    expect(await contactsOf(x)).toEqual([s.address]);
    expect(await requestsOf(x)).toEqual([]);
    expect((await s.request('chat.history', { peer: x.address })).messages[0]!.readAt).not.toBeNull();
    // Accepting twice is harmless.
    expect((await x.request('requests.accept', { address: s.address })).contact.address).toBe(s.address);

    await x.request('chat.typing', { to: s.address, typing: true });
    expect(await s.waitFor('chat.typing')).toEqual({ from: x.address, typing: true });
    const second = await s.send(x.address, 'glad you answered');
    await x.waitFor('chat.message', (m) => m.id === second.id);
    await x.request('chat.delivered', { peer: s.address, ids: [second.id] });
    await s.waitFor('chat.receipt', (r) => r.status === 'delivered' && r.ids.includes(second.id));
    await xPhone.request('chat.read', { peer: s.address, upTo: second.id });
    await s.waitFor('chat.receipt', (r) => r.status === 'read' && r.ids.includes(second.id));
    await x.close();
    await xPhone.close();
    await s.waitFor('presence.update', (p) => p.address === x.address && p.online === false);
  });

  it('withholds a blocked sender’s messages everywhere while acking them, never rings, syncs the list to other devices, and unblocks', async () => {
    const y = await connect(d.a);
    const yPhone = await connect(d.b, y.wallet);
    const z = await connect(d.b);
    const zTablet = await connect(d.a, z.wallet);

    const hello = await z.send(y.address, 'hello');
    await y.waitFor('chat.message', (m) => m.id === hello.id);
    const hi = await y.send(z.address, 'hi');
    await z.waitFor('chat.message', (m) => m.id === hi.id);
    // z's node caches that z may type to y.
    await z.request('chat.typing', { to: y.address, typing: true });
    await y.waitFor('chat.typing', (t) => t.from === z.address);

    const { block } = await y.request('blocks.add', { address: z.address });
    expect(block).toEqual({ address: z.address, blockedAt: expect.any(String) });
    expect(await yPhone.waitFor('blocks.changed', (e) => e.address === z.address)).toEqual({ address: z.address, blocked: true, at: block.blockedAt });
    expect((await yPhone.request('blocks.list', {})).blocks).toEqual([block]);
    // Blocking again answers the same entry and tells nobody.
    expect((await yPhone.request('blocks.add', { address: z.address })).block).toEqual(block);

    // The blocked sender: acked as usual, its other device gets its copy; nothing reaches y.
    const hidden = await z.send(y.address, 'are you there?');
    expect(hidden).toMatchObject({ id: expect.stringMatching(/^\d+$/), duplicate: false });
    await zTablet.waitFor('chat.message', (m) => m.id === hidden.id);
    await z.request('chat.typing', { to: y.address, typing: false });
    const call = await z.request('call.start', { to: [y.address], kind: 'audio' });
    expect(call.participants.map((p) => [p.address, p.state])).toEqual([
      [z.address, 'accepted'],
      [y.address, 'ringing'],
    ]);
    await sleep(QUIET_MS);
    for (const device of [y, yPhone]) {
      expect(device.eventsOf('chat.message').map((m) => m.id)).not.toContain(hidden.id);
      expect(device.eventsOf('chat.typing').filter((t) => t.typing === false)).toEqual([]);
      expect(device.eventsOf('call.incoming')).toEqual([]);
    }
    // Not by sync, history or the conversation list either.
    expect((await yPhone.request('chat.sync', {})).messages.map((m) => m.id)).not.toContain(hidden.id);
    expect((await y.request('chat.history', { peer: z.address })).messages.map((m) => m.id)).toEqual([hi.id, hello.id]);
    expect((await y.request('contacts.list', {})).contacts.find((c) => c.address === z.address)).toMatchObject({ unread: 1, lastMessage: { id: hi.id } });
    // What the sender sees: its message, sent, never delivered; the call goes unanswered.
    expect((await z.request('chat.history', { peer: y.address })).messages[0]).toMatchObject({ id: hidden.id, deliveredAt: null, readAt: null });
    expect(await z.waitFor('call.ended', (e) => e.callId === call.callId, RING_TIMEOUT_MS + 5000)).toEqual({ callId: call.callId, reason: 'missed' });
    expect(await presenceOf(z, y.address)).toMatchObject({ online: null });
    // y typing to the blocked z goes nowhere either.
    await y.request('chat.typing', { to: z.address, typing: true });

    // A restarted device of y syncs the list too.
    const yLaptop = await connect(d.b, y.wallet);
    expect((await yLaptop.request('blocks.list', {})).blocks.map((b) => b.address)).toEqual([z.address]);

    expect(await yPhone.request('blocks.remove', { address: z.address })).toEqual({ removed: true });
    expect(await y.waitFor('blocks.changed', (e) => e.address === z.address && !e.blocked)).toMatchObject({ blocked: false });
    expect(await yPhone.request('blocks.remove', { address: z.address })).toEqual({ removed: false });
    expect((await y.request('blocks.list', {})).blocks).toEqual([]);
    const after = await z.send(y.address, 'after the unblock');
    await y.waitFor('chat.message', (m) => m.id === after.id);
    await z.request('chat.typing', { to: y.address, typing: false });
    await y.waitFor('chat.typing', (t) => t.from === z.address && t.typing === false);
    // What was withheld stays withheld.
    expect((await y.request('chat.history', { peer: z.address })).messages.map((m) => m.id)).toEqual([after.id, hi.id, hello.id]);
    expect(z.eventsOf('chat.typing')).toEqual([]);
  });

  it('deletes a request for the owner only; a later message from the same address is a new request', async () => {
    const owner = await connect(d.a);
    const ownerPhone = await connect(d.b, owner.wallet);
    const spammer = await connect(d.b);
    const one = await spammer.send(owner.address, 'buy now');
    const two = await spammer.send(owner.address, 'last chance');
    await owner.waitFor('chat.message', (m) => m.id === two.id);
    expect(await owner.request('requests.delete', { address: spammer.address })).toEqual({});
    expect(await ownerPhone.waitFor('requests.changed', (e) => e.address === spammer.address)).toEqual({ address: spammer.address, action: 'deleted' });
    expect(await requestsOf(ownerPhone)).toEqual([]);
    expect((await ownerPhone.request('chat.history', { peer: spammer.address })).messages).toEqual([]);
    expect((await ownerPhone.request('chat.sync', {})).messages.map((m) => m.id)).not.toContain(one.id);
    expect((await spammer.request('chat.history', { peer: owner.address })).messages.map((m) => m.id)).toEqual([two.id, one.id]);

    const three = await spammer.send(owner.address, 'one more');
    await owner.waitFor('chat.message', (m) => m.id === three.id);
    expect((await owner.request('requests.list', {})).requests).toEqual([expect.objectContaining({ address: spammer.address, unread: 1, lastMessage: expect.objectContaining({ id: three.id }) })]);
    // Blocked from the request: it leaves the list (and comes back if unblocked).
    await owner.request('blocks.add', { address: spammer.address });
    expect(await requestsOf(owner)).toEqual([]);
    await owner.request('blocks.remove', { address: spammer.address });
    expect(await requestsOf(owner)).toEqual([spammer.address]);
  });

  it('answers bad requests with clear codes', async () => {
    const me = await connect(d.a);
    const friend = await connect(d.b);
    const nobody = Wallet.createRandom().address;
    await friend.send(me.address, 'hi');
    await me.send(friend.address, 'hello');
    expect(await code(me.request('requests.accept', { address: nobody }))).toBe('REQUEST_NOT_FOUND');
    expect(await code(me.request('requests.delete', { address: nobody }))).toBe('REQUEST_NOT_FOUND');
    // An accepted conversation is no request.
    expect(await code(me.request('requests.delete', { address: friend.address }))).toBe('REQUEST_NOT_FOUND');
    expect(await code(me.request('requests.accept', { address: me.address }))).toBe('SELF_MESSAGE');
    expect(await code(me.request('blocks.add', { address: me.address.toLowerCase() }))).toBe('BLOCK_SELF');
    expect(await code(me.request('blocks.remove', { address: me.address }))).toBe('BLOCK_SELF');
    expect(await code(me.request('blocks.add', { address: '0x1234' }))).toBe('INVALID_FIELDS');
    expect(await code(me.request('blocks.add', { address: friend.address, extra: true } as never))).toBe('INVALID_FIELDS');
    expect(await code(me.request('requests.list', { before: '1' } as never))).toBe('INVALID_FIELDS');
    expect(await code(me.request('blocks.list', {}))).toBe('ok');
  });
});
