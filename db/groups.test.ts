import { Wallet } from 'ethers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../testkit/pg.ts';
import { openDatabase, type Database } from './client.ts';
import { GroupStore, groupConversation } from './groups.ts';
import { MessageStore } from './messages.ts';

/** The group store on PostgreSQL and on the embedded PGlite (its raw statements must run on both). */
describe.each(['postgres', 'pglite'] as const)('GroupStore on %s', (kind) => {
  let database: Database;
  let drop: () => Promise<void> = async () => undefined;
  let groups: GroupStore;
  let messages: MessageStore;
  const [alice, bob, carol] = [0, 1, 2].map(() => Wallet.createRandom().address) as [string, string, string];
  let n = 0;
  const say = async (group: string, sender: string, body: string) => {
    const conversation = groupConversation(group);
    const [r] = await messages.insertBatch([{ conversation, sender, recipient: conversation, clientId: `c-${++n}-${Math.random().toString(36).slice(2)}`, kind: 'text', body, attachmentId: null }]);
    if (!r?.ok) throw new Error('not stored');
    return r.id;
  };

  beforeAll(async () => {
    if (kind === 'postgres') {
      const db = await createTestDatabase('groupstore');
      drop = db.drop;
      database = await openDatabase({ url: db.url, dataDir: '', poolSize: 4 });
    } else {
      database = await openDatabase({ url: null, dataDir: 'memory://', poolSize: 1 });
    }
    await database.migrate();
    groups = new GroupStore(database);
    messages = new MessageStore(database);
  });
  afterAll(async () => {
    await database.close();
    await drop();
  });

  it('keeps members, visible ranges, cursors, receipts and the list consistent', async () => {
    const { id: g, created } = await groups.create({ name: 'g', description: null, picture: null, createdBy: alice }, async (tx) => {
      const created = await tx.system({ action: 'created', by: alice, members: [alice, bob] });
      await tx.put([
        { address: alice, role: 'admin', state: 'active', addedBy: alice, joinedFrom: created.id },
        { address: bob, role: 'member', state: 'active', addedBy: alice, joinedFrom: created.id },
        { address: carol, role: 'member', state: 'invited', addedBy: alice, joinedFrom: null },
      ]);
      return { id: tx.group.id, created };
    });
    expect(await groups.activeGroupIds(bob)).toEqual([g]);
    expect(await groups.activeGroupIds(carol)).toEqual([]);
    const members = (await groups.members(g)).map((m) => `${m.address} ${m.state}`);
    expect(members[0]).toBe(`${alice} active`);
    expect(members.slice(1).sort()).toEqual([`${bob} active`, `${carol} invited`].sort());

    const m1 = await say(g, alice, 'one');
    // Group rows touch no contact row and stay out of the 1:1 sync.
    expect((await messages.since(bob, null, 10)).messages).toEqual([]);
    expect((await messages.since(alice, null, 10)).messages).toEqual([]);

    // Bob reads: the cursor stops at the newest message; the senders in range are told.
    const read = await groups.advance(g, bob, 'read', 10n ** 18n);
    expect(read).toMatchObject({ before: 0n, after: m1 });
    expect(await groups.sendersBetween(g, bob, 0n, m1)).toEqual([alice]);
    expect(await groups.advance(g, carol, 'read', m1)).toBeNull();
    expect(await groups.receipts(g, [m1], true)).toEqual([{ id: m1, of: 1, delivered: 1, read: 1, deliveredBy: [bob], readBy: [bob] }]);

    // Carol accepts after m1: she sees from her join on.
    const joined = await groups.change(g, async (tx) => {
      const j = await tx.system({ action: 'joined', by: carol, members: [carol] });
      await tx.activate(carol, j.id);
      return j.id;
    });
    const m2 = await say(g, bob, 'two');
    expect((await groups.since(carol, null, 10)).messages.map((m) => m.id)).toEqual([joined!, m2]);
    expect((await groups.history(g, { from: joined!, until: null }, null, 10)).map((m) => m.id)).toEqual([m2, joined!]);
    expect((await groups.receipts(g, [m1, m2], false)).map((r) => r.of)).toEqual([1, 2]);

    // Bob is removed: nothing after his removal is his.
    const removed = await groups.change(g, async (tx) => {
      const r = await tx.system({ action: 'removed', by: alice, members: [bob] });
      await tx.end(bob, 'removed', r.id);
      return r.id;
    });
    const m3 = await say(g, alice, 'three');
    const bobSees = (await groups.since(bob, null, 10)).messages.map((m) => m.id);
    expect(bobSees).toContain(removed!);
    expect(bobSees).not.toContain(m3);
    expect(await groups.activeGroupIds(bob)).toEqual([]);
    expect(await groups.advance(g, bob, 'delivered', m3)).toBeNull();

    const list = await groups.list(carol);
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({ state: 'active', memberCount: 2, unread: 2, lastMessage: { id: m3, body: 'three' } });
    expect((await groups.list(bob))).toEqual([]);
    expect(await groups.acceptedBy(alice, [bob, carol])).toEqual(new Set());
    expect(await groups.change('00000000-0000-4000-8000-000000000000', async () => 1)).toBeNull();
    expect(created.kind).toBe('system');
  });
});
