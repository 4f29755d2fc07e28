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

  it('refuses a repeat inside one batch whose content differs, and stores only the first', async () => {
    const a = msg();
    const out = await store.insertBatch([a, { ...a, body: 'other text' }, { ...a }, { ...a, kind: 'audio' }]);
    expect(out[0]).toMatchObject({ ok: true, duplicate: false });
    expect(out[1]).toEqual({ ok: false, reason: 'idempotency_conflict' });
    expect(out[2]).toMatchObject({ ok: true, duplicate: true, id: (out[0] as { id: bigint }).id });
    expect(out[3]).toEqual({ ok: false, reason: 'idempotency_conflict' });
    const stored = (await store.history(conv, null, 50)).filter((m) => m.clientId === a.clientId);
    expect(stored.map((m) => m.body)).toEqual([a.body]);
  });

  it('keeps history to its own conversation when conversations interleave', async () => {
    const [carol, dave, eve] = [Wallet.createRandom().address, Wallet.createRandom().address, Wallet.createRandom().address];
    const ac = conversationKey(alice, carol);
    const cd = conversationKey(carol, dave);
    // Interleaved, with the other conversation's rows newest: a history without its filter
    // would return them first.
    const batch: NewMessage[] = [];
    for (let i = 0; i < 4; i++) {
      batch.push(msg({ conversation: ac, sender: alice, recipient: carol, body: `ac ${i}` }));
      batch.push(msg({ conversation: cd, sender: dave, recipient: carol, body: `cd ${i}` }));
    }
    await store.insertBatch(batch);
    await store.insertBatch([msg({ conversation: cd, sender: carol, recipient: dave, body: 'cd newest' })]);
    const hist = await store.history(ac, null, 10);
    expect(hist.map((m) => m.body)).toEqual(['ac 3', 'ac 2', 'ac 1', 'ac 0']);
    expect(hist.every((m) => m.conversation === ac)).toBe(true);
    const page = await store.history(cd, hist[1]!.id, 10);
    expect(page.map((m) => m.body)).toEqual(['cd 1', 'cd 0']);
    // A conversation nobody wrote in has no history, however full the table is.
    expect(await store.history(conversationKey(eve, carol), null, 10)).toEqual([]);
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
    // Its own pair: the counts do not depend on what earlier tests stored.
    const [frank, grace] = [Wallet.createRandom().address, Wallet.createRandom().address];
    const fg = conversationKey(frank, grace);
    const own = (over: Partial<NewMessage> = {}) => msg({ conversation: fg, sender: frank, recipient: grace, ...over });
    await store.insertBatch([own(), own(), own({ sender: grace, recipient: frank })]);
    await store.insertBatch([own()]);
    const [graceSide] = await contacts.list(grace);
    const [frankSide] = await contacts.list(frank);
    expect(graceSide).toMatchObject({ peer: frank, unread: 3 });
    expect(frankSide).toMatchObject({ peer: grace, unread: 1 });
    expect(frankSide!.lastMessageId).toBe(graceSide!.lastMessageId);
    const last = (await store.history(fg, null, 1))[0]!;
    const read = await store.markRead(fg, grace, frank, last.id);
    expect(read.ids).toHaveLength(3);
    expect((await contacts.list(grace))[0]!.unread).toBe(0);
    expect((await contacts.list(frank))[0]!.unread).toBe(1);
    expect(await contacts.watchers(frank)).toEqual([grace]);
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

  it('marks receipts of many requests in one statement, each row reported once', async () => {
    const [ivan, judy] = [Wallet.createRandom().address, Wallet.createRandom().address];
    const ij = conversationKey(ivan, judy);
    const own = () => msg({ conversation: ij, sender: ivan, recipient: judy });
    const ids = (await store.insertBatch([own(), own(), own(), own()])).map((o) => (o.ok ? o.id : 0n));
    // Two devices acknowledge overlapping ids; a third request names a row that is not theirs.
    const [d1, d2, d3] = await store.markDeliveredBatch([
      { conversation: ij, recipient: judy, ids: [ids[0]!, ids[1]!] },
      { conversation: ij, recipient: judy, ids: [ids[1]!, ids[2]!] },
      { conversation: ij, recipient: ivan, ids: [ids[3]!] },
    ]);
    expect(d1!.ids).toEqual([ids[0], ids[1]]);
    expect(d2!.ids).toEqual([ids[2]]);
    expect(d3!.ids).toEqual([]);
    expect(d1!.at).toEqual(d2!.at);
    // Two read marks for one conversation: the lower mark gets the rows up to it, the higher one the rest.
    const [r1, r2] = await store.markReadBatch([
      { conversation: ij, recipient: judy, peer: ivan, upTo: ids[3]! },
      { conversation: ij, recipient: judy, peer: ivan, upTo: ids[1]! },
    ]);
    expect(r2!.ids).toEqual([ids[0], ids[1]]);
    expect(r1!.ids).toEqual([ids[2], ids[3]]);
    expect((await contacts.list(judy)).find((c) => c.peer === ivan)!.unread).toBe(0);
    const rows = await store.history(ij, null, 10);
    expect(rows.every((m) => m.readAt !== null && m.deliveredAt !== null)).toBe(true);
  });

  it('leaves the unread count at what is above a read mark', async () => {
    const [kim, lee] = [Wallet.createRandom().address, Wallet.createRandom().address];
    const kl = conversationKey(kim, lee);
    const own = () => msg({ conversation: kl, sender: kim, recipient: lee });
    const ids = (await store.insertBatch([own(), own(), own()])).map((o) => (o.ok ? o.id : 0n));
    const read = await store.markRead(kl, lee, kim, ids[0]!);
    expect(read.ids).toEqual([ids[0]]);
    expect((await contacts.list(lee))[0]!.unread).toBe(2);
    // A mark below what is already read changes nothing and keeps the count.
    expect((await store.markRead(kl, lee, kim, ids[0]!)).ids).toEqual([]);
    expect((await contacts.list(lee))[0]!.unread).toBe(2);
  });
});
