import { randomUUID } from 'node:crypto';
import { Wallet } from 'ethers';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTestDatabase, query } from '../testkit/pg.ts';
import { AttachmentStore } from './attachments.ts';
import { openDatabase, type Database } from './client.ts';
import { ContactStore } from './contacts.ts';
import { MessageStore, conversationKey, type InsertOutcome, type NewMessage } from './messages.ts';

/** Edge cases of the message store on PostgreSQL, one case per rule it keeps. */
describe('MessageStore rules', () => {
  let database: Database;
  let url: string;
  let drop: () => Promise<void> = async () => undefined;
  let store: MessageStore;
  const pair = () => {
    const [a, b] = [Wallet.createRandom().address, Wallet.createRandom().address];
    return { a, b, conv: conversationKey(a, b) };
  };
  let n = 0;
  const msg = (p: { a: string; b: string; conv: string }, over: Partial<NewMessage> = {}): NewMessage => ({
    conversation: p.conv,
    sender: p.a,
    recipient: p.b,
    clientId: `client-${++n}-xxxxxxxx`,
    kind: 'text',
    body: `text ${n}`,
    attachmentId: null,
    ...over,
  });
  const idOf = (o: InsertOutcome | undefined) => {
    if (!o?.ok) throw new Error('not stored');
    return o.id;
  };

  beforeAll(async () => {
    const db = await createTestDatabase('store_rules');
    drop = db.drop;
    url = db.url;
    database = await openDatabase({ url: db.url, dataDir: '', poolSize: 2 });
    await database.migrate();
    store = new MessageStore(database);
  });
  afterAll(async () => {
    await database.close();
    await drop();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('keys a conversation by the lower-cased addresses, smaller first', () => {
    expect(conversationKey('0xBB', '0xaa')).toBe('0xaa:0xbb');
    expect(conversationKey('0xaa', '0xBB')).toBe('0xaa:0xbb');
    expect(conversationKey('0xAA', '0xaa')).toBe('0xaa:0xaa');
  });

  it('answers a retry with the stored row unless its content differs in any way', async () => {
    const p = pair();
    const [att1, att2] = [randomUUID(), randomUUID()];
    const first = msg(p, { clientId: 'retry-base-1' });
    const withAtt = msg(p, { clientId: 'retry-att-1', kind: 'audio', body: null, attachmentId: att1 });
    const stored = await store.insertBatch([first, withAtt]);
    const [id, attId] = [idOf(stored[0]), idOf(stored[1])];
    expect(stored[0]).toEqual({ ok: true, id, createdAt: expect.any(Date), duplicate: false, withheld: false });
    const conflict = { ok: false, reason: 'idempotency_conflict' };
    const retries = await store.insertBatch([
      { ...first },
      { ...first, recipient: Wallet.createRandom().address },
      { ...first, kind: 'video' },
      { ...first, body: 'other' },
      { ...first, attachmentId: att1 },
      { ...withAtt },
      { ...withAtt, body: undefined as unknown as null },
      { ...withAtt, attachmentId: att2 },
      { ...withAtt, attachmentId: undefined as unknown as null },
    ]);
    expect(retries).toEqual([
      { ok: true, id, createdAt: (stored[0] as { createdAt: Date }).createdAt, duplicate: true, withheld: false },
      conflict,
      conflict,
      conflict,
      conflict,
      { ok: true, id: attId, createdAt: expect.any(Date), duplicate: true, withheld: false },
      { ok: true, id: attId, createdAt: expect.any(Date), duplicate: true, withheld: false },
      conflict,
      conflict,
    ]);
    expect(await store.count()).toBeGreaterThanOrEqual(2);
  });

  it('stores a key repeated inside one batch once, flagging the later copy as a duplicate', async () => {
    const p = pair();
    const x = msg(p);
    const y = msg(p);
    const out = await store.insertBatch([x, y, { ...x }]);
    expect(out.map((o) => o.ok && o.duplicate)).toEqual([false, false, true]);
    expect(idOf(out[2])).toBe(idOf(out[0]));
    expect((await store.history(p.conv, null, 10)).map((m) => m.body)).toEqual([y.body, x.body]);
  });

  it('tells apart keys that differ in conversation, sender or client id alone', async () => {
    const p = pair();
    const q = pair();
    const base = msg(p, { clientId: 'same-id-1' });
    const out = await store.insertBatch([
      base,
      { ...base, sender: p.b, recipient: p.a },
      { ...base, conversation: q.conv, sender: q.a, recipient: q.b },
      { ...base, clientId: 'same-id-2' },
    ]);
    expect(out.map((o) => o.ok && !o.duplicate)).toEqual([true, true, true, true]);
    expect(new Set(out.map(idOf)).size).toBe(4);
  });

  it('fails loudly when a row was neither inserted nor found', async () => {
    const lost = new MessageStore({ db: database.db, run: async () => [] });
    await expect(lost.insertBatch([msg(pair())])).rejects.toThrow('message neither inserted nor found');
  });

  it('joins attachments that exist and leaves out those that do not', async () => {
    const p = pair();
    const meta = await new AttachmentStore(database.db).put(p.a, p.b, 'audio/ogg', Buffer.from('abc'));
    const [o1, o2, o3] = await store.insertBatch([
      msg(p, { kind: 'audio', body: null, attachmentId: meta.id }),
      msg(p, { kind: 'audio', body: null, attachmentId: randomUUID() }),
      msg(p),
    ]);
    const hist = await store.history(p.conv, null, 10);
    expect(hist.map((m) => m.id)).toEqual([idOf(o3), idOf(o2), idOf(o1)]);
    expect(hist[2]!.attachment).toEqual({ id: meta.id, mime: 'audio/ogg', size: 3 });
    expect(hist[1]!.attachment).toBeNull();
    expect(hist[0]!.attachment).toBeNull();
    expect(hist[2]).toMatchObject({ conversation: p.conv, sender: p.a, recipient: p.b, kind: 'audio', body: null, attachmentId: meta.id, deliveredAt: null, readAt: null });
    expect(hist[2]!.createdAt).toBeInstanceOf(Date);
    // A retry of a message with an attachment comes back with it.
    const again = await store.insertBatch([msg(p, { clientId: hist[2]!.clientId, kind: 'audio', body: null, attachmentId: meta.id })]);
    expect(again[0]).toMatchObject({ ok: true, id: idOf(o1), duplicate: true });
    const [byId] = await store.byIds([{ conversation: p.conv, id: idOf(o1) }]);
    expect(byId!.attachment).toEqual({ id: meta.id, mime: 'audio/ogg', size: 3 });
  });

  it('pages history below a cursor, newest first', async () => {
    const p = pair();
    const ids = (await store.insertBatch([1, 2, 3, 4].map(() => msg(p)))).map(idOf);
    expect((await store.history(p.conv, ids[2]!, 10)).map((m) => m.id)).toEqual([ids[1], ids[0]]);
    expect((await store.history(p.conv, null, 2)).map((m) => m.id)).toEqual([ids[3], ids[2]]);
    expect(await store.history(p.conv, ids[0]!, 10)).toEqual([]);
  });

  it('syncs both directions and says whether more follow, exactly at the limit too', async () => {
    const p = pair();
    const ids = (await store.insertBatch([msg(p), msg(p, { sender: p.b, recipient: p.a }), msg(p)])).map(idOf);
    const exact = await store.since(p.a, null, 3);
    expect(exact).toMatchObject({ more: false });
    expect(exact.messages.map((m) => m.id)).toEqual(ids);
    const short = await store.since(p.a, null, 2);
    expect(short.more).toBe(true);
    expect(short.messages.map((m) => m.id)).toEqual(ids.slice(0, 2));
    // For a: the one it received at the cursor is not acknowledged yet, so it comes first.
    expect((await store.since(p.a, ids[1]!, 10)).messages.map((m) => m.id)).toEqual([ids[1], ids[2]]);
    await store.markDelivered(p.conv, p.a, [ids[1]!]);
    expect((await store.since(p.a, ids[1]!, 10)).messages.map((m) => m.id)).toEqual([ids[2]]);
    // For b: the one it received after the cursor, and before it those never delivered.
    const forB = await store.since(p.b, ids[2]!, 10);
    expect(forB.messages.map((m) => m.id)).toEqual([ids[0], ids[2]]);
    expect(forB.more).toBe(false);
  });

  it('marks delivery with the database time, and answers an empty update with the current time', async () => {
    const p = pair();
    const ids = (await store.insertBatch([msg(p), msg(p)])).map(idOf);
    vi.useFakeTimers({ now: Date.parse('2001-01-01T00:00:00Z'), toFake: ['Date'] });
    const res = await store.markDelivered(p.conv, p.b, ids);
    expect([...res.ids].sort()).toEqual(ids);
    const [row] = await query<{ at: Date }>(url, 'select delivered_at as at from messages where id = $1', [ids[0]!.toString()]);
    expect(res.at.getTime()).toBe(row!.at.getTime());
    expect(res.at.getFullYear()).toBeGreaterThan(2001);
    const none = await store.markDelivered(p.conv, p.b, ids);
    expect(none).toEqual({ ids: [], at: new Date('2001-01-01T00:00:00Z') });
    // Only this conversation's.
    const other = pair();
    expect((await store.markDelivered(other.conv, p.b, ids)).ids).toEqual([]);
  });

  it('marks read up to an id, keeps the delivery time, and recounts the unread of that contact only', async () => {
    const p = pair();
    const contacts = new ContactStore(database.db);
    const ids = (await store.insertBatch([msg(p), msg(p), msg(p), msg(p, { sender: p.b, recipient: p.a })])).map(idOf);
    await store.markDelivered(p.conv, p.b, [ids[0]!]);
    const [delivered] = await query<{ at: Date }>(url, 'select delivered_at as at from messages where id = $1', [ids[0]!.toString()]);
    vi.useFakeTimers({ now: Date.parse('2001-01-01T00:00:00Z'), toFake: ['Date'] });
    const res = await store.markRead(p.conv, p.b, p.a, ids[1]!);
    expect([...res.ids].sort()).toEqual([ids[0], ids[1]]);
    expect(res.at.getFullYear()).toBeGreaterThan(2001);
    const rows = await query<{ id: string; read_at: Date | null; delivered_at: Date | null }>(url, 'select id::text, read_at, delivered_at from messages where conversation = $1 order by id', [p.conv]);
    expect(rows[0]!.delivered_at!.getTime()).toBe(delivered!.at.getTime());
    expect(rows[1]!.delivered_at!.getTime()).toBe(res.at.getTime());
    expect(rows[1]!.read_at!.getTime()).toBe(res.at.getTime());
    expect(rows[2]!.read_at).toBeNull();
    expect(rows[3]!.read_at).toBeNull();
    expect((await contacts.list(p.b)).find((c) => c.peer === p.a)!.unread).toBe(1);
    expect((await contacts.list(p.a)).find((c) => c.peer === p.b)!.unread).toBe(1);
    expect(await store.markRead(p.conv, p.b, p.a, ids[1]!)).toEqual({ ids: [], at: new Date('2001-01-01T00:00:00Z') });
  });

  it('fetches by conversation and id pairs', async () => {
    const p = pair();
    const q = pair();
    const [a1, a2] = (await store.insertBatch([msg(p), msg(p)])).map(idOf);
    expect(await store.byIds([])).toEqual([]);
    const got = await store.byIds([
      { conversation: p.conv, id: a2! },
      { conversation: q.conv, id: a1! },
    ]);
    expect(got.map((m) => m.id)).toEqual([a2]);
    expect(got[0]).toMatchObject({ conversation: p.conv, sender: p.a, recipient: p.b, attachment: null });
  });

  it('counts every stored message', async () => {
    const before = await store.count();
    await store.insertBatch([msg(pair()), msg(pair())]);
    expect(await store.count()).toBe(before + 2);
  });
});
