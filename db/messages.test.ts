import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Wallet } from 'ethers';
import { createTestDatabase } from '../testkit/pg.ts';
import { openDatabase, type Database } from './client.ts';
import { ContactStore } from './contacts.ts';
import { MessageStore, conversationKey, type NewMessage } from './messages.ts';

/** The same store tests on PostgreSQL and on the embedded PGlite. */
describe.each(['postgres', 'pglite'] as const)('MessageStore on %s', (kind) => {
  let database: Database;
  let drop: () => Promise<void> = async () => undefined;
  let store: MessageStore;
  let contacts: ContactStore;
  const alice = Wallet.createRandom().address;
  const bob = Wallet.createRandom().address;
  const conv = conversationKey(alice, bob);
  let n = 0;
  const msg = (over: Partial<NewMessage> = {}): NewMessage => ({
    conversation: conv,
    sender: alice,
    recipient: bob,
    clientId: `client-${++n}-${Math.random().toString(36).slice(2)}`,
    kind: 'text',
    body: `text ${n}`,
    attachmentId: null,
    ...over,
  });

  beforeAll(async () => {
    if (kind === 'postgres') {
      const db = await createTestDatabase('store');
      drop = db.drop;
      database = await openDatabase({ url: db.url, dataDir: '', poolSize: 4 });
    } else {
      database = await openDatabase({ url: null, dataDir: 'memory://', poolSize: 1 });
    }
    await database.migrate();
    store = new MessageStore(database);
    contacts = new ContactStore(database.db);
  });
  afterAll(async () => {
    await database.close();
    await drop();
  });

  it('keys a conversation the same way from both sides', () => {
    expect(conversationKey(alice, bob)).toBe(conversationKey(bob, alice));
    expect(conv).toBe(conv.toLowerCase());
  });

  it('stores a batch in order, collapses retries and flags reused ids with other content', async () => {
    const a = msg();
    const b = msg();
    const out = await store.insertBatch([a, b, { ...a }]);
    expect(out.map((o) => o.ok && o.duplicate)).toEqual([false, false, true]);
    const [o1, o2, o3] = out as Extract<(typeof out)[number], { ok: true }>[];
    expect(o2!.id).toBeGreaterThan(o1!.id);
    expect(o3!.id).toBe(o1!.id);
    const again = await store.insertBatch([{ ...b }, { ...a, body: 'changed' }]);
    expect(again[0]).toMatchObject({ ok: true, duplicate: true, id: o2!.id });
    expect(again[1]).toEqual({ ok: false, reason: 'idempotency_conflict' });
    const hist = await store.history(conv, null, 10);
    expect(hist.map((m) => m.body)).toEqual([b.body, a.body]);
  });

  it('stores any text exactly, including characters that need quoting in arrays', async () => {
    const bodies = ['he said "hi", {x} \\ back\\slash', 'NULL', '', 'línea\nnueva \u{1F389}', "it's; drop table messages; --"];
    const [carol, dave] = [Wallet.createRandom().address, Wallet.createRandom().address];
    const own = conversationKey(carol, dave);
    const batch = bodies.map((body) => msg({ body, conversation: own, sender: carol, recipient: dave }));
    const out = await store.insertBatch(batch);
    expect(out.every((o) => o.ok && !o.duplicate)).toBe(true);
    const hist = await store.history(own, null, bodies.length);
    expect(hist.map((m) => m.body).reverse()).toEqual(bodies);
  });

  it('keeps both sides of the conversation list with unread counts', async () => {
    await store.insertBatch([msg(), msg(), msg({ sender: bob, recipient: alice })]);
    const [bobSide] = await contacts.list(bob);
    const [aliceSide] = await contacts.list(alice);
    expect(bobSide).toMatchObject({ peer: alice, unread: 4 });
    expect(aliceSide).toMatchObject({ peer: bob, unread: 1 });
    expect(aliceSide!.lastMessageId).toBe(bobSide!.lastMessageId);
    const last = (await store.history(conv, null, 1))[0]!;
    const read = await store.markRead(conv, bob, alice, last.id);
    expect(read.ids).toHaveLength(4);
    expect((await contacts.list(bob))[0]!.unread).toBe(0);
    expect(await contacts.watchers(alice)).toEqual([bob]);
  });

  it('syncs from a cursor and re-offers unacknowledged messages at or below it', async () => {
    const carol = Wallet.createRandom().address;
    const c = conversationKey(alice, carol);
    const out = await store.insertBatch([1, 2, 3].map(() => msg({ conversation: c, recipient: carol })));
    const ids = out.map((o) => (o.ok ? o.id : 0n));
    const all = await store.since(carol, null, 2);
    expect(all.more).toBe(true);
    expect(all.messages.map((m) => m.id)).toEqual(ids.slice(0, 2));
    // Nothing acknowledged yet: everything at or below the cursor comes again.
    const next = await store.since(carol, ids[1]!, 10);
    expect(next.messages.map((m) => m.id)).toEqual(ids);
    await store.markDelivered(c, carol, ids.slice(0, 2));
    const acked = await store.since(carol, ids[1]!, 10);
    expect(acked.messages.map((m) => m.id)).toEqual([ids[2]]);
    expect(acked.more).toBe(false);
  });

  it('marks delivery only for the recipient', async () => {
    const [o] = await store.insertBatch([msg()]);
    const id = o!.ok ? o!.id : 0n;
    expect((await store.markDelivered(conv, alice, [id])).ids).toEqual([]);
    expect((await store.markDelivered(conv, bob, [id])).ids).toEqual([id]);
    expect((await store.markDelivered(conv, bob, [id])).ids).toEqual([]);
  });
});
