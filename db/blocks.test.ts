import { Wallet } from 'ethers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../testkit/pg.ts';
import { BlockStore } from './blocks.ts';
import { openDatabase, type Database } from './client.ts';
import { ContactStore } from './contacts.ts';
import { MessageStore, conversationKey, type NewMessage } from './messages.ts';

const addr = () => Wallet.createRandom().address;
let n = 0;
const msg = (sender: string, recipient: string, body = `text ${++n}`): NewMessage => ({
  conversation: conversationKey(sender, recipient),
  sender,
  recipient,
  clientId: `c-${++n}-${Math.random().toString(36).slice(2)}`,
  kind: 'text',
  body,
  attachmentId: null,
});

/** Blocks, withheld messages and requests, on PostgreSQL and on the embedded PGlite. */
describe.each(['postgres', 'pglite'] as const)('blocks and requests on %s', (kind) => {
  let database: Database;
  let drop: () => Promise<void> = async () => undefined;
  let messages: MessageStore;
  let contacts: ContactStore;
  let blocks: BlockStore;

  beforeAll(async () => {
    if (kind === 'postgres') {
      const db = await createTestDatabase('blocks');
      drop = db.drop;
      database = await openDatabase({ url: db.url, dataDir: '', poolSize: 4 });
    } else {
      database = await openDatabase({ url: null, dataDir: 'memory://', poolSize: 1 });
    }
    await database.migrate();
    messages = new MessageStore(database);
    contacts = new ContactStore(database.db);
    blocks = new BlockStore(database.db);
  });
  afterAll(async () => {
    await database.close();
    await drop();
  });

  it('adds a block once, answers the stored entry on a repeat, lists newest first and removes', async () => {
    const [owner, x, y] = [addr(), addr(), addr()];
    const first = await blocks.add(owner, x);
    expect(first).toMatchObject({ created: true, row: { owner, blocked: x } });
    expect(first!.row.createdAt).toBeInstanceOf(Date);
    const again = await blocks.add(owner, x);
    expect(again).toEqual({ created: false, row: first!.row });
    await blocks.add(owner, y);
    expect((await blocks.list(owner)).map((b) => b.blocked)).toEqual([y, x]);
    expect(await blocks.isBlocked(owner, x)).toBe(true);
    expect(await blocks.isBlocked(x, owner)).toBe(false);
    expect(await blocks.remove(owner, x)).toBe(true);
    expect(await blocks.remove(owner, x)).toBe(false);
    expect(await blocks.isBlocked(owner, x)).toBe(false);
    expect((await blocks.list(owner)).map((b) => b.blocked)).toEqual([y]);
  });

  it('refuses a block past the cap (null) but still answers one already there', async () => {
    const [owner, a, b, c] = [addr(), addr(), addr(), addr()];
    expect(await blocks.add(owner, a, 2)).toMatchObject({ created: true });
    expect(await blocks.add(owner, b, 2)).toMatchObject({ created: true });
    expect(await blocks.add(owner, c, 2)).toBeNull();
    expect(await blocks.add(owner, a, 2)).toMatchObject({ created: false });
  });

  it('reads a relation in both directions with acceptance', async () => {
    const [x, y] = [addr(), addr()];
    expect(await blocks.relation(x, y)).toEqual({ blockedByPeer: false, blocking: false, accepted: false });
    await messages.insertBatch([msg(x, y)]);
    expect(await blocks.relation(x, y)).toEqual({ blockedByPeer: false, blocking: false, accepted: true });
    expect(await blocks.relation(y, x)).toEqual({ blockedByPeer: false, blocking: false, accepted: false });
    await blocks.add(y, x);
    expect(await blocks.relation(x, y)).toEqual({ blockedByPeer: true, blocking: false, accepted: true });
    expect(await blocks.relation(y, x)).toEqual({ blockedByPeer: false, blocking: true, accepted: false });
  });

  it('stores a message to a blocker withheld: the sender sees it, the blocker nowhere', async () => {
    const [blocker, sender] = [addr(), addr()];
    const before = (await messages.insertBatch([msg(sender, blocker, 'before the block')]))[0]!;
    await blocks.add(blocker, sender);
    const out = (await messages.insertBatch([msg(sender, blocker, 'while blocked')]))[0]!;
    expect(out).toMatchObject({ ok: true, duplicate: false, withheld: true });
    expect(before).toMatchObject({ ok: true, withheld: false });
    const conv = conversationKey(blocker, sender);

    expect((await messages.history(conv, null, 10, sender)).map((m) => m.body)).toEqual(['while blocked', 'before the block']);
    expect((await messages.history(conv, null, 10, blocker)).map((m) => m.body)).toEqual(['before the block']);
    expect((await messages.since(blocker, null, 10)).messages.map((m) => m.body)).toEqual(['before the block']);
    expect((await messages.since(sender, null, 10)).messages.map((m) => m.body)).toEqual(['before the block', 'while blocked']);
    // The blocker's conversation row did not move: unread and last message are those of before.
    const [row] = await contacts.list(blocker);
    expect(row).toMatchObject({ peer: sender, unread: 1 });
    if (!before.ok || !out.ok) throw new Error('not stored');
    expect(row!.lastMessageId).toBe(before.id);
    // It cannot be marked delivered or read by the blocker (no receipt could ever leave).
    expect((await messages.markDelivered(conv, blocker, [out.id])).ids).toEqual([]);
    expect((await messages.markRead(conv, blocker, sender, out.id)).ids).toEqual([before.id]);
    expect((await contacts.list(blocker))[0]).toMatchObject({ unread: 0 });
    // Not a straggler for the blocker's sync either.
    expect((await messages.since(blocker, out.id, 10)).messages).toEqual([]);

    // A retry of the withheld message answers withheld again.
    const repeat = await messages.insertBatch([{ ...msg(sender, blocker, 'while blocked'), clientId: (await messages.history(conv, null, 1, sender))[0]!.clientId }]);
    expect(repeat[0]).toMatchObject({ ok: true, duplicate: true, withheld: true });

    // Unblocked: new messages reach the blocker again; the withheld one stays withheld.
    await blocks.remove(blocker, sender);
    expect((await messages.insertBatch([msg(sender, blocker, 'after unblock')]))[0]).toMatchObject({ withheld: false });
    expect((await messages.history(conv, null, 10, blocker)).map((m) => m.body)).toEqual(['after unblock', 'before the block']);
  });

  it('lists requests apart from accepted conversations, without blocked peers', async () => {
    const [me, friend, stranger, spammer, added] = [addr(), addr(), addr(), addr(), addr()];
    await messages.insertBatch([msg(friend, me), msg(stranger, me), msg(spammer, me)]);
    await messages.insertBatch([msg(me, friend)]);
    await contacts.add(me, added);
    const peers = async (which: 'accepted' | 'requests') => (await contacts.list(me, 500, which)).map((r) => r.peer).sort();
    expect(await peers('accepted')).toEqual([friend, added].sort());
    expect(await peers('requests')).toEqual([stranger, spammer].sort());
    await blocks.add(me, spammer);
    expect(await peers('requests')).toEqual([stranger]);
    expect((await contacts.list(me)).length).toBe(4);
  });

  it('accepts a request (shares from then on), answers an accepted one unchanged, and nothing for no conversation', async () => {
    const [me, stranger, nobody] = [addr(), addr(), addr()];
    await messages.insertBatch([msg(stranger, me)]);
    expect(await contacts.accept(me, stranger)).toMatchObject({ peer: stranger, sharesPresence: true, startedSharing: true, unread: 1 });
    expect(await contacts.accept(me, stranger)).toMatchObject({ startedSharing: false });
    expect(await contacts.accept(me, nobody)).toBeNull();
    expect(await contacts.sharingWith(stranger, [me])).toEqual(new Set([me]));
    expect((await contacts.list(me, 500, 'requests')).map((r) => r.peer)).toEqual([]);
  });

  it('deletes a request: gone from the list, its messages withheld from the owner only; a new message is a new request', async () => {
    const [me, stranger, friend] = [addr(), addr(), addr()];
    await messages.insertBatch([msg(stranger, me, 'one'), msg(stranger, me, 'two')]);
    await messages.insertBatch([msg(friend, me), msg(me, friend)]);
    expect(await contacts.deleteRequest(me, friend)).toBe(false);
    expect(await contacts.deleteRequest(me, addr())).toBe(false);
    expect(await contacts.deleteRequest(me, stranger)).toBe(true);
    expect(await contacts.deleteRequest(me, stranger)).toBe(false);
    const conv = conversationKey(me, stranger);
    expect(await messages.history(conv, null, 10, me)).toEqual([]);
    expect((await messages.history(conv, null, 10, stranger)).map((m) => m.body)).toEqual(['two', 'one']);
    expect((await contacts.list(me)).map((r) => r.peer)).toEqual([friend]);

    await messages.insertBatch([msg(stranger, me, 'three')]);
    const [again] = await contacts.list(me, 500, 'requests');
    expect(again).toMatchObject({ peer: stranger, unread: 1 });
    expect((await messages.history(conv, null, 10, me)).map((m) => m.body)).toEqual(['three']);
  });

  it('keeps presence from peers the user blocked, whatever they share', async () => {
    const [me, x] = [addr(), addr()];
    await messages.insertBatch([msg(me, x), msg(x, me)]);
    expect(await contacts.watchers(me)).toEqual([x]);
    expect(await contacts.sharingWith(x, [me])).toEqual(new Set([me]));
    await blocks.add(me, x);
    expect(await contacts.watchers(me)).toEqual([]);
    expect(await contacts.sharingWith(x, [me])).toEqual(new Set());
    // The other way round is untouched; acceptance itself is not a block matter.
    expect(await contacts.watchers(x)).toEqual([me]);
    expect(await contacts.acceptedBy(x, [me])).toEqual(new Set([me]));
  });
});
