import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import type { HDNodeWallet } from 'ethers';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../config/config.ts';
import { openDatabase, type Database } from '../db/client.ts';
import { createLogger } from '../infra/logger.ts';
import type { ErrorCode } from '../protocol/index.ts';
import { RedisSfuRegistry } from '../sfu/registry/redis.ts';
import type { SfuRegistry } from '../sfu/registry/registry.ts';
import { startSignaling, type SignalingNode } from '../signaling/node.ts';
import { RequestError, TestClient } from '../testkit/client.ts';
import { migrate, startNode, TEST_JWT_SECRET, type NodeProcess } from '../testkit/node.ts';
import { createTestDatabase, query } from '../testkit/pg.ts';
import { REDIS_URL, clearPrefix, testPrefix } from '../testkit/redis.ts';

/**
 * Group conversations end to end: two signaling nodes (child processes) on real PostgreSQL
 * and Redis, and the embedded shape (one node in this process, in-process bus) on real
 * PostgreSQL. Members are spread over the nodes; one node also holds a removed member next
 * to active ones, so the removal must be enforced per member, not per node.
 */

const GROUP_MAX_MEMBERS = 5;
const CALL_MAX_PARTICIPANTS = 3;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Deployment {
  /** Where users connect: [node A, node B] (the same node twice when there is one). */
  urls: [string, string];
  /** Sum of `blockrtc_bus_publishes_total` over the nodes, by channel. */
  publishes(): Promise<{ user: number; group: number }>;
  /** A media node the registry can place calls on (never asked to do media here). */
  fakeSfu(): Promise<void>;
  stop(): Promise<void>;
}

const env = (dbUrl: string): Record<string, string> => ({
  DATABASE_URL: dbUrl,
  PUBLIC_ORIGIN: 'http://app.test',
  ALLOWED_ORIGINS: 'http://app.test,http://127.0.0.1',
  RATE_LIMIT_AUTH: '10000/60',
  RATE_LIMIT_CONNECT: '10000/60',
  RATE_LIMIT_MESSAGES: '10000/10',
  RATE_LIMIT_CALLS: '1000/60',
  WS_MAX_FRAMES_PER_SECOND: '500',
  GROUP_MAX_MEMBERS: String(GROUP_MAX_MEMBERS),
  CALL_MAX_PARTICIPANTS: String(CALL_MAX_PARTICIPANTS),
  SFU_COMMAND_TIMEOUT_MS: '500',
});

function parsePublishes(text: string): { user: number; group: number } {
  const out = { user: 0, group: 0 };
  for (const m of text.matchAll(/^blockrtc_bus_publishes_total\{channel="(user|group)"\} (\d+)/gm)) out[m[1] as 'user' | 'group'] += Number(m[2]);
  return out;
}

const heartbeat = (registry: SfuRegistry) => registry.heartbeat('fake-sfu', [{ index: 0, alive: true, consumers: 0, producers: 0, rooms: 0, cpu: 0 }], false, Date.now());

async function twoNodes(dbUrl: string): Promise<Deployment> {
  const prefix = testPrefix('groups');
  const nodeEnv = { ...env(dbUrl), REDIS_URL, REDIS_KEY_PREFIX: prefix, PRESENCE_HEARTBEAT_MS: '1000', PRESENCE_STALE_MS: '60000' };
  const nodes: NodeProcess[] = await Promise.all([startNode('signaling', nodeEnv), startNode('signaling', nodeEnv)]);
  const redis = new Redis(REDIS_URL);
  const registry = new RedisSfuRegistry(redis, prefix, 60_000, 500);
  let timer: NodeJS.Timeout | null = null;
  return {
    urls: [nodes[0]!.url, nodes[1]!.url],
    async publishes() {
      const texts = await Promise.all(nodes.map(async (n) => (await fetch(`${n.metricsUrl}/metrics`)).text()));
      return texts.map(parsePublishes).reduce((a, b) => ({ user: a.user + b.user, group: a.group + b.group }));
    },
    async fakeSfu() {
      await heartbeat(registry);
      timer ??= setInterval(() => void heartbeat(registry), 1000);
    },
    async stop() {
      if (timer) clearInterval(timer);
      await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
      redis.disconnect();
      await clearPrefix(prefix);
    },
  };
}

async function embedded(dbUrl: string): Promise<Deployment> {
  const config = loadConfig('all', { HOST: '127.0.0.1', PORT: '0', METRICS_PORT: '0', JWT_SECRET: TEST_JWT_SECRET, LOG_LEVEL: 'warn', ...env(dbUrl), PRESENCE_STALE_MS: '60000' });
  const log = createLogger(config, new Writable({ write: (_c, _e, done) => done() }));
  const database: Database = await openDatabase(config.db);
  const node: SignalingNode = await startSignaling({ config, database, log });
  return {
    urls: [node.url, node.url],
    publishes: async () => parsePublishes(await node.metrics.registry.metrics()),
    fakeSfu: () => heartbeat(node.backends.registry),
    async stop() {
      await node.close();
      await database.close();
    },
  };
}

async function refused(p: Promise<unknown>): Promise<ErrorCode> {
  try {
    await p;
  } catch (err) {
    if (err instanceof RequestError) return err.body.code;
    throw err;
  }
  throw new Error('expected the request to be refused');
}

describe.each([
  ['two nodes on Redis', twoNodes],
  ['embedded (in-process bus)', embedded],
] as const)('groups: %s', (_label, deploy) => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let dep: Deployment;
  const clients: TestClient[] = [];

  /** A user on node A (0) or B (1); `like` signs in the same wallet again (another device). */
  const connect = async (node: 0 | 1, like?: { wallet: HDNodeWallet }) => {
    const c = await TestClient.signInAndConnect(dep.urls[node], like?.wallet);
    clients.push(c);
    return c;
  };
  /** `who` accepts `adder` (adds it as a contact), so `adder` may put `who` in a group directly. */
  const accepts = (who: TestClient, adder: TestClient) => who.request('contacts.add', { address: adder.address });
  const say = (c: TestClient, group: string, text: string, clientId: string = randomUUID()) => c.request('group.send', { group, clientId, kind: 'text', text });
  const gotMessage = (c: TestClient, id: string) => c.waitFor('group.message', (m) => m.id === id);
  const hasMessage = (c: TestClient, id: string) => c.eventsOf('group.message').some((m) => m.id === id);

  beforeAll(async () => {
    db = await createTestDatabase('groups');
    await migrate(db.url);
    dep = await deploy(db.url);
  });

  afterAll(async () => {
    for (const c of clients) c.ws.terminate();
    await dep?.stop();
    await db?.drop();
  });

  it('creates a group over two nodes, delivers once per group, and keeps receipts, typing, history and the list', async () => {
    const alice = await connect(0);
    const alicePhone = await connect(1, alice);
    const bob = await connect(1);
    const carol = await connect(0);
    await accepts(bob, alice);
    await accepts(carol, alice);

    const created = await alice.request('group.create', { name: ' Team ', picture: '#00aaff', description: 'the team', members: [bob.address, carol.address, bob.address] });
    const group = created.group.id;
    expect(created.group).toMatchObject({ name: 'Team', picture: '#00aaff', description: 'the team', createdBy: alice.address, memberCount: 3, conversation: `g:${group}`, activeCall: null });
    // The creator first, then the others.
    expect(created.members[0]).toMatchObject({ address: alice.address, role: 'admin', state: 'active' });
    expect(created.members.slice(1).map((m) => `${m.address} ${m.role} ${m.state}`).sort()).toEqual([`${bob.address} member active`, `${carol.address} member active`].sort());
    await bob.waitFor('group.membership', (e) => e.group.id === group && e.state === 'active');
    await carol.waitFor('group.membership', (e) => e.group.id === group && e.state === 'active');
    await alicePhone.waitFor('group.membership', (e) => e.group.id === group && e.state === 'active');

    // One message: one row, one group publish, every member device but the sending one.
    const before = await dep.publishes();
    const clientId = randomUUID();
    const m1 = await say(alice, group, 'hello team', clientId);
    expect(m1).toMatchObject({ conversation: `g:${group}`, duplicate: false });
    const [atBob] = await Promise.all([gotMessage(bob, m1.id), gotMessage(carol, m1.id), gotMessage(alicePhone, m1.id)]);
    expect(atBob).toMatchObject({ group, from: alice.address, kind: 'text', text: 'hello team', system: null, clientId });
    const after = await dep.publishes();
    expect(after.group - before.group).toBe(1);
    expect(after.user - before.user).toBe(0);
    const rows = await query<{ n: number }>(db.url, `select count(*)::int as n from messages where conversation = $1 and kind = 'text'`, [`g:${group}`]);
    expect(rows[0]!.n).toBe(1);
    // Retried with the same client id: the stored message; other content is a conflict.
    expect(await say(alice, group, 'hello team', clientId)).toMatchObject({ id: m1.id, duplicate: true });
    expect(await refused(say(alice, group, 'something else', clientId))).toBe('IDEMPOTENCY_CONFLICT');

    // Typing reaches the others, not the typist's devices.
    await bob.request('group.typing', { group, typing: true });
    expect(await alice.waitFor('group.typing')).toEqual({ group, from: bob.address, typing: true });
    await carol.waitFor('group.typing', (t) => t.from === bob.address);

    // Receipts are cursors: the sender hears about them and asks for counts and names.
    expect(await bob.request('group.delivered', { group, upTo: m1.id })).toEqual({ upTo: m1.id });
    await alice.waitFor('group.receipt', (r) => r.status === 'delivered' && r.by === bob.address && r.upTo === m1.id);
    // Past the newest message the cursor stops at it.
    expect(await bob.request('group.read', { group, upTo: '9223372036854775807' })).toEqual({ upTo: m1.id });
    await alicePhone.waitFor('group.receipt', (r) => r.status === 'read' && r.by === bob.address && r.upTo === m1.id);
    const receipts = await alice.request('group.receipts', { group, ids: [m1.id], details: true });
    expect(receipts.receipts).toEqual([{ id: m1.id, of: 2, delivered: 1, read: 1, deliveredBy: [bob.address], readBy: [bob.address] }]);
    expect((await carol.request('group.receipts', { group, ids: [m1.id] })).receipts).toEqual([{ id: m1.id, of: 2, delivered: 1, read: 1 }]);

    // The conversation list: last message and unread count per member.
    const carolList = await carol.request('group.list', {});
    expect(carolList.groups).toHaveLength(1);
    expect(carolList.groups[0]).toMatchObject({ id: group, role: 'member', state: 'active', unread: 1, memberCount: 3, lastMessage: { id: m1.id, from: alice.address, text: 'hello team' } });
    await carol.request('group.read', { group, upTo: m1.id });
    expect((await carol.request('group.list', {})).groups[0]).toMatchObject({ unread: 0, readUpTo: m1.id });
    expect((await bob.request('group.list', {})).groups[0]!.unread).toBe(0);

    // History, newest first, starts with the creation (a system message).
    const history = await bob.request('group.history', { group });
    expect(history.messages.map((m) => m.kind)).toEqual(['text', 'system']);
    expect(history.messages[1]!.system).toMatchObject({ action: 'created', by: alice.address, members: [alice.address, bob.address, carol.address], name: 'Team' });

    // Sync with groups covers both kinds with one cursor; without, nothing changes for old clients.
    const direct = await bob.send(alice.address, 'a direct one');
    const synced = await bob.request('chat.sync', { groups: true });
    expect(synced.messages.map((m) => m.id)).toEqual([direct.id]);
    expect(synced.groupMessages!.map((m) => m.id)).toEqual([history.messages[1]!.id, m1.id]);
    expect(synced.cursor).toBe(direct.id);
    const paged = await bob.request('chat.sync', { groups: true, limit: 2 });
    expect([...paged.messages, ...paged.groupMessages!].map((m) => m.id).sort()).toEqual([history.messages[1]!.id, m1.id].sort());
    expect(paged).toMatchObject({ more: true, cursor: m1.id });
    const plain = await bob.request('chat.sync', {});
    expect(plain.groupMessages).toBeUndefined();
    expect(plain.messages.map((m) => m.id)).toEqual([direct.id]);
  });

  it('refuses non-members, non-admins and groups over the member limit with clear codes', async () => {
    const alice = await connect(0);
    const bob = await connect(1);
    const eve = await connect(1);
    await accepts(bob, alice);
    const { group } = await alice.request('group.create', { name: 'Closed', members: [bob.address] });
    const g = group.id;
    await bob.waitFor('group.membership', (e) => e.group.id === g);

    // Someone who is not in it.
    expect(await refused(say(eve, g, 'let me in'))).toBe('NOT_GROUP_MEMBER');
    expect(await refused(eve.request('group.history', { group: g }))).toBe('NOT_GROUP_MEMBER');
    expect(await refused(eve.request('group.get', { group: g }))).toBe('NOT_GROUP_MEMBER');
    expect(await refused(eve.request('group.typing', { group: g, typing: true }))).toBe('NOT_GROUP_MEMBER');
    expect(await refused(eve.request('group.read', { group: g, upTo: '1' }))).toBe('NOT_GROUP_MEMBER');
    expect(await refused(eve.request('group.receipts', { group: g, ids: ['1'] }))).toBe('NOT_GROUP_MEMBER');
    expect(await refused(eve.request('group.leave', { group: g }))).toBe('NOT_GROUP_MEMBER');
    expect(await refused(eve.request('group.addMembers', { group: g, members: [eve.address] }))).toBe('NOT_GROUP_MEMBER');
    expect(await refused(eve.request('group.call', { group: g, kind: 'audio' }))).toBe('NOT_GROUP_MEMBER');
    expect(await refused(eve.request('group.accept', { group: g }))).toBe('GROUP_NOT_INVITED');
    // A group that does not exist.
    const nowhere = randomUUID();
    expect(await refused(say(alice, nowhere, 'hello?'))).toBe('GROUP_NOT_FOUND');
    expect(await refused(alice.request('group.addMembers', { group: nowhere, members: [bob.address] }))).toBe('GROUP_NOT_FOUND');
    expect(await refused(alice.request('group.get', { group: nowhere }))).toBe('GROUP_NOT_FOUND');

    // A member who is not an admin.
    expect(await refused(bob.request('group.removeMember', { group: g, member: alice.address }))).toBe('NOT_GROUP_ADMIN');
    expect(await refused(bob.request('group.addMembers', { group: g, members: [eve.address] }))).toBe('NOT_GROUP_ADMIN');
    expect(await refused(bob.request('group.update', { group: g, name: 'Mine now' }))).toBe('NOT_GROUP_ADMIN');
    expect(await refused(bob.request('group.setRole', { group: g, member: bob.address, role: 'admin' }))).toBe('NOT_GROUP_ADMIN');
    // Admin mistakes.
    expect(await refused(alice.request('group.removeMember', { group: g, member: eve.address }))).toBe('GROUP_MEMBER_NOT_FOUND');
    expect(await refused(alice.request('group.setRole', { group: g, member: eve.address, role: 'admin' }))).toBe('GROUP_MEMBER_NOT_FOUND');
    expect(await refused(alice.request('group.setRole', { group: g, member: alice.address, role: 'member' }))).toBe('GROUP_LAST_ADMIN');
    const renamed = await alice.request('group.update', { group: g, name: 'Open', picture: '\u{1F680}', description: null });
    expect(renamed.group).toMatchObject({ name: 'Open', picture: '\u{1F680}', description: null });
    const updated = await bob.waitFor('group.message', (m) => m.system?.action === 'updated');
    expect(updated.system).toMatchObject({ by: alice.address, name: 'Open', picture: '\u{1F680}', description: null });

    // Voice notes: uploaded for the group, readable by its members only.
    const upload = async (who: TestClient & { token: string }, query: string) =>
      fetch(`${dep.urls[0]}/media?${query}`, { method: 'POST', headers: { authorization: `Bearer ${who.token}`, 'content-type': 'audio/webm' }, body: Buffer.from('fake opus') });
    expect((await upload(eve, `group=${g}`)).status).toBe(403);
    const note = (await (await upload(alice, `group=${g.toUpperCase()}`)).json()) as { id: string };
    const sent = await alice.request('group.send', { group: g, clientId: randomUUID(), kind: 'audio', attachmentId: note.id });
    expect((await bob.waitFor('group.message', (m) => m.id === sent.id)).attachment).toMatchObject({ id: note.id, mime: 'audio/webm' });
    const download = (who: TestClient & { token: string }) => fetch(`${dep.urls[1]}/media/${note.id}`, { headers: { authorization: `Bearer ${who.token}` } });
    expect(await (await download(bob)).text()).toBe('fake opus');
    expect((await download(eve)).status).toBe(404);
    // A 1:1 upload is no group's attachment.
    const direct = (await (await upload(alice, `to=${bob.address}`)).json()) as { id: string };
    expect(await refused(alice.request('group.send', { group: g, clientId: randomUUID(), kind: 'audio', attachmentId: direct.id }))).toBe('ATTACHMENT_INVALID');
    expect((await upload(alice, `to=${bob.address}&group=${g}`)).status).toBe(400);

    // The member limit (GROUP_MAX_MEMBERS = 5 here, the creator included; invitations count).
    const others = await Promise.all([0, 1, 2, 3, 4].map((i) => connect(i % 2 === 0 ? 0 : 1)));
    expect(await refused(alice.request('group.create', { name: 'Too big', members: others.map((o) => o.address) }))).toBe('GROUP_FULL');
    expect(await refused(alice.request('group.addMembers', { group: g, members: others.slice(0, 4).map((o) => o.address) }))).toBe('GROUP_FULL');
    const added = await alice.request('group.addMembers', { group: g, members: others.slice(0, 3).map((o) => o.address) });
    expect(added.added.map((m) => m.state)).toEqual(['invited', 'invited', 'invited']);
    expect(await refused(alice.request('group.addMembers', { group: g, members: [others[3]!.address] }))).toBe('GROUP_FULL');
    // Declining frees the place.
    await others[0]!.waitFor('group.membership', (e) => e.group.id === g && e.state === 'invited');
    await others[0]!.request('group.decline', { group: g });
    expect(await refused(others[0]!.request('group.decline', { group: g }))).toBe('GROUP_NOT_INVITED');
    await alice.request('group.addMembers', { group: g, members: [others[3]!.address] });
    expect((await alice.request('group.get', { group: g })).members).toHaveLength(GROUP_MAX_MEMBERS);
  });

  it('gives a removed member nothing sent after removal and a new member nothing from before it joined', async () => {
    const alice = await connect(0);
    const bob = await connect(1);
    const carol = await connect(0); // on alice's node: the node stays subscribed after her removal
    const dave = await connect(1);
    for (const c of [bob, carol, dave]) await accepts(c, alice);
    const { group } = await alice.request('group.create', { name: 'Boundaries', members: [bob.address, carol.address] });
    const g = group.id;
    await Promise.all([bob, carol].map((c) => c.waitFor('group.membership', (e) => e.group.id === g && e.state === 'active')));
    const m1 = await say(alice, g, 'before removal');
    await gotMessage(carol, m1.id);

    await alice.request('group.removeMember', { group: g, member: carol.address });
    const removal = await carol.waitFor('group.message', (m) => m.system?.action === 'removed');
    expect(removal.system).toMatchObject({ by: alice.address, members: [carol.address] });
    await carol.waitFor('group.membership', (e) => e.group.id === g && e.state === 'removed');
    const m2 = await say(bob, g, 'after removal');
    await gotMessage(alice, m2.id);
    const m3 = await say(alice, g, 'after removal, from her node');
    await gotMessage(bob, m3.id);
    await sleep(300);
    expect(hasMessage(carol, m2.id) || hasMessage(carol, m3.id)).toBe(false);
    // Not through history or sync either; what she saw while a member stays readable.
    const carolHistory = (await carol.request('group.history', { group: g })).messages.map((m) => m.id);
    expect(carolHistory).toContain(m1.id);
    expect(carolHistory).toContain(removal.id);
    expect(carolHistory).not.toContain(m2.id);
    expect(carolHistory).not.toContain(m3.id);
    const carolSync = (await carol.request('chat.sync', { groups: true })).groupMessages!.map((m) => m.id);
    expect(carolSync).toContain(m1.id);
    expect(carolSync).not.toContain(m2.id);
    expect((await carol.request('chat.sync', { groups: true, after: removal.id })).groupMessages).toEqual([]);
    expect(await refused(say(carol, g, 'still here?'))).toBe('NOT_GROUP_MEMBER');
    expect(await refused(carol.request('group.get', { group: g }))).toBe('NOT_GROUP_MEMBER');
    expect((await carol.request('group.list', {})).groups.map((x) => x.id)).not.toContain(g);
    // Her read of a later message does not count either.
    expect(await refused(carol.request('group.read', { group: g, upTo: m3.id }))).toBe('NOT_GROUP_MEMBER');

    // A new member sees the group from the message that added them.
    const added = await alice.request('group.addMembers', { group: g, members: [dave.address] });
    expect(added.added).toMatchObject([{ address: dave.address, state: 'active', role: 'member', addedBy: alice.address }]);
    await dave.waitFor('group.membership', (e) => e.group.id === g && e.state === 'active');
    const daveHistory = (await dave.request('group.history', { group: g })).messages;
    expect(daveHistory.map((m) => m.system?.action)).toEqual(['added']);
    const daveSync = (await dave.request('chat.sync', { groups: true })).groupMessages!;
    expect(daveSync.map((m) => m.id)).toEqual(daveHistory.map((m) => m.id));
    const receipts = await alice.request('group.receipts', { group: g, ids: [m1.id, m3.id] });
    // Dave could not receive either; carol counts for m1 (a member then), not for m3.
    expect(receipts.receipts.map((r) => r.of)).toEqual([2, 1]);
    const m4 = await say(bob, g, 'welcome dave');
    await gotMessage(dave, m4.id);

    // Someone who never accepted alice is invited and gets nothing until accepting.
    const frank = await connect(0);
    const invited = await alice.request('group.addMembers', { group: g, members: [frank.address] });
    expect(invited.added).toMatchObject([{ address: frank.address, state: 'invited' }]);
    const invitation = await frank.waitFor('group.membership', (e) => e.group.id === g);
    expect(invitation).toMatchObject({ state: 'invited', by: alice.address, group: { name: 'Boundaries' } });
    const m5 = await say(bob, g, 'frank cannot see this');
    await gotMessage(alice, m5.id);
    expect(await refused(frank.request('group.history', { group: g }))).toBe('NOT_GROUP_MEMBER');
    expect(await refused(say(frank, g, 'hi?'))).toBe('NOT_GROUP_MEMBER');
    expect((await frank.request('group.get', { group: g })).members.find((m) => m.address === frank.address)).toMatchObject({ state: 'invited' });
    expect((await frank.request('group.list', {})).groups).toMatchObject([{ id: g, state: 'invited', unread: 0, lastMessage: null }]);
    await sleep(200);
    expect(hasMessage(frank, m5.id)).toBe(false);
    const accepted = await frank.request('group.accept', { group: g });
    expect(accepted.members.find((m) => m.address === frank.address)).toMatchObject({ state: 'active' });
    const m6 = await say(bob, g, 'frank is in');
    await gotMessage(frank, m6.id);
    const frankHistory = (await frank.request('group.history', { group: g })).messages.map((m) => m.id);
    expect(frankHistory).toContain(m6.id);
    expect(frankHistory).not.toContain(m5.id);

    // The only admin leaving hands the group to the longest-standing member.
    await alice.request('group.leave', { group: g });
    const promoted = await bob.waitFor('group.message', (m) => m.system?.action === 'role');
    expect(promoted.system).toMatchObject({ members: [bob.address], role: 'admin' });
    await bob.request('group.update', { group: g, name: 'Bob\u2019s now' });
    expect(await refused(say(alice, g, 'gone'))).toBe('NOT_GROUP_MEMBER');
    // Re-adding someone gives a fresh start at the new join.
    await bob.request('group.removeMember', { group: g, member: dave.address });
    expect(await refused(dave.request('group.typing', { group: g, typing: true }))).toBe('NOT_GROUP_MEMBER');
  });

  it('leaves out, without telling the adder, someone who blocked the adder', async () => {
    const [alice, erin, gina] = [await connect(0), await connect(1), await connect(1)];
    await accepts(gina, alice);
    await erin.request('blocks.add', { address: alice.address });
    const created = await alice.request('group.create', { name: 'Blocked', members: [erin.address, gina.address] });
    expect(created.members.map((m) => m.address).sort()).toEqual([alice.address, gina.address].sort());
    const g = created.group.id;
    // Adding erin later: answered as usual, erin is not in the group and hears nothing.
    const again = await alice.request('group.addMembers', { group: g, members: [erin.address] });
    expect(again.added).toEqual([]);
    const m = await say(alice, g, 'erin blocked me');
    await gotMessage(gina, m.id);
    await sleep(200);
    expect(erin.eventsOf('group.membership').some((e) => e.group.id === g)).toBe(false);
    expect(hasMessage(erin, m.id)).toBe(false);
    expect(await refused(erin.request('group.history', { group: g }))).toBe('NOT_GROUP_MEMBER');
  });

  it('starts a call to a group: members ring through the group channel, late joiners get in up to the call limit', async () => {
    await dep.fakeSfu();
    const alice = await connect(0);
    const members = await Promise.all([connect(1), connect(0), connect(1)]);
    for (const m of members) await accepts(m, alice);
    const eve = await connect(1);
    const { group } = await alice.request('group.create', { name: 'Call me', members: members.map((m) => m.address) });
    const g = group.id;
    await Promise.all(members.map((m) => m.waitFor('group.membership', (e) => e.group.id === g)));

    const { callId } = await alice.request('group.call', { group: g, kind: 'audio' });
    for (const m of members) expect(await m.waitFor('call.incoming', (c) => c.callId === callId)).toMatchObject({ from: alice.address, kind: 'audio', group: g });
    await members[0]!.waitFor('group.call', (e) => e.callId === callId && e.state === 'started');
    const [row] = await query<{ group_id: string }>(db.url, 'select group_id from calls where id = $1', [callId]);
    expect(row!.group_id).toBe(g);
    // Running: the group shows it, and starting again answers the same call.
    expect((await members[2]!.request('group.get', { group: g })).group.activeCall).toMatchObject({ callId, kind: 'audio', startedBy: alice.address });
    expect(await members[1]!.request('group.call', { group: g, kind: 'video' })).toEqual({ callId });

    // Rejecting does not end a group's call (others may still join); the caller cancelling does, and the group hears.
    await members[0]!.request('call.reject', { callId });
    expect(await refused(eve.request('call.accept', { callId }))).toBe('CALL_NOT_ALLOWED');
    await alice.request('call.cancel', { callId });
    const ended = await members[2]!.waitFor('group.call', (e) => e.callId === callId && e.state === 'ended');
    expect(ended).toMatchObject({ group: g, from: alice.address });
    expect((await members[2]!.request('group.get', { group: g })).group.activeCall).toBeNull();

    // Members take part from their answer, up to CALL_MAX_PARTICIPANTS (3 people here).
    const second = await members[1]!.request('group.call', { group: g, kind: 'video' });
    expect(second.callId).not.toBe(callId);
    await alice.waitFor('call.incoming', (c) => c.callId === second.callId && c.group === g);
    await alice.request('call.accept', { callId: second.callId });
    await members[1]!.waitFor('call.participant', (p) => p.callId === second.callId && p.address === alice.address && p.state === 'accepted');
    await members[0]!.request('call.accept', { callId: second.callId });
    expect(await refused(members[2]!.request('call.accept', { callId: second.callId }))).toBe('TOO_MANY_PARTICIPANTS');
    const history = await alice.request('call.history', {});
    expect(history.calls.find((c) => c.callId === second.callId)).toMatchObject({ group: g, initiator: members[1]!.address });
  });
});

