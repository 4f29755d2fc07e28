import { getAddress } from 'ethers';
import { describe, expect, it, vi } from 'vitest';
import type { ContactRow, ContactStore } from '../../db/contacts.ts';
import { conversationKey, type MessageStore, type StoredMessage } from '../../db/messages.ts';
import type { UserStore } from '../../db/users.ts';
import { decodeDelivery } from '../../infra/bus/bus.ts';
import { MemoryBus } from '../../infra/bus/memory.ts';
import { BlockRtcError } from '../../protocol/errors.ts';
import { captureLog, fakeConnection, openRelations, settle } from '../../testkit/fakes.ts';
import { Events } from '../events.ts';
import { MemoryPresenceStore } from './memory.ts';
import { PresenceService } from './service.ts';

const ALICE = '0x1111111111111111111111111111111111111111';
const BOB = '0x2222222222222222222222222222222222222222';
const CAROL = '0x3333333333333333333333333333333333333333';
const DAVE = '0x4444444444444444444444444444444444444444';
const FRANK = '0x5555555555555555555555555555555555555555';
/** An address whose checksummed form has upper-case letters. */
const ERIN = getAddress(`0x${'ab'.repeat(20)}`);
/** ERIN with the case of its first letter flipped: hex, but a wrong checksum. */
const ERIN_WRONG_CASE = ERIN.replace(/[a-fA-F]/, (c) => (c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase()));

/** The contacts table in memory: only the methods the presence service calls. */
class FakeContacts {
  readonly rows: ContactRow[] = [];
  failWatchers: Error | null = null;
  private row(owner: string, peer: string): ContactRow {
    let row = this.rows.find((r) => r.owner === owner && r.peer === peer);
    if (!row) this.rows.push((row = { owner, peer, addedAt: new Date(0), lastMessageId: null, lastMessageAt: null, unread: 0, sharesPresence: false }));
    return row;
  }
  /** contacts.add: the owner's row, sharing the owner's presence with the peer. */
  async add(owner: string, peer: string): Promise<ContactRow & { startedSharing: boolean }> {
    const row = this.row(owner, peer);
    const startedSharing = !row.sharesPresence;
    row.sharesPresence = true;
    return Object.assign(row, { startedSharing });
  }
  /** A message stored from `sender` to `recipient`: both rows, the sender's one sharing. */
  messaged(sender: string, recipient: string): void {
    this.row(sender, recipient).sharesPresence = true;
    this.row(recipient, sender);
  }
  async list(owner: string): Promise<ContactRow[]> {
    return this.rows.filter((r) => r.owner === owner);
  }
  async watchers(peer: string): Promise<string[]> {
    if (this.failWatchers) throw this.failWatchers;
    return this.rows.filter((w) => w.peer === peer && this.rows.some((s) => s.owner === peer && s.peer === w.owner && s.sharesPresence)).map((r) => r.owner);
  }
  readonly sharingWith = vi.fn(async (viewer: string, owners: string[]) => new Set(owners.filter((o) => this.rows.some((r) => r.owner === o && r.peer === viewer && r.sharesPresence))));
}

class FakeUsers {
  readonly stored = new Map<string, Date | null>();
  readonly setLastSeen = vi.fn(async (addresses: string[], at: Date) => {
    for (const a of addresses) this.stored.set(a, at);
  });
  readonly lastSeen = vi.fn(async (addresses: string[]) => new Map(addresses.filter((a) => this.stored.has(a)).map((a) => [a, this.stored.get(a)!])));
}

class FakeMessages {
  readonly stored: StoredMessage[] = [];
  readonly byIds = vi.fn(async (keys: { conversation: string; id: bigint }[]) => this.stored.filter((m) => keys.some((k) => k.conversation === m.conversation && k.id === m.id)));
}

function setup() {
  const bus = new MemoryBus();
  const got: { user: string; ev: string; data: unknown; skip: string }[] = [];
  bus.onDeliver((user, payload) => {
    const d = decodeDelivery(payload);
    const f = JSON.parse(d.frame) as { ev: string; data: unknown };
    got.push({ user, ev: f.ev, data: f.data, skip: d.skip });
  });
  const cap = captureLog();
  const store = new MemoryPresenceStore();
  const contacts = new FakeContacts();
  const users = new FakeUsers();
  const messages = new FakeMessages();
  const presence = new PresenceService({
    store,
    contacts: contacts as unknown as ContactStore,
    messages: messages as unknown as MessageStore,
    users: users as unknown as UserStore,
    events: new Events(bus, cap.log),
    relations: openRelations(),
    log: cap.log,
  });
  return { bus, got, cap, store, contacts, users, messages, presence };
}

describe('PresenceService: online and offline', () => {
  it('announces the first connection to the users who have this user as a contact, only to them', async () => {
    const t = setup();
    t.contacts.messaged(BOB, ALICE);
    t.contacts.messaged(BOB, DAVE);
    await t.contacts.add(BOB, CAROL); // Bob shares with Carol, but she does not have him as a contact.
    for (const u of [ALICE, CAROL, DAVE]) await t.bus.subscribe(u);
    await t.presence.connected(fakeConnection(BOB).conn);
    await settle();
    const update = { ev: 'presence.update', data: { address: BOB, online: true, lastSeen: null }, skip: '' };
    expect(t.got).toEqual([{ user: ALICE, ...update }, { user: DAVE, ...update }]);
  });

  it('says nothing on further connections, nor on disconnecting all but the last', async () => {
    const t = setup();
    t.contacts.messaged(BOB, ALICE);
    await t.bus.subscribe(ALICE);
    const a = fakeConnection(BOB).conn;
    const b = fakeConnection(BOB).conn;
    await t.presence.connected(a);
    await t.presence.connected(b);
    await t.presence.disconnected(a);
    await settle();
    expect(t.got).toHaveLength(1);
    expect(t.got[0]!.data).toMatchObject({ online: true });
    expect(t.users.setLastSeen).not.toHaveBeenCalled();
  });

  it('announces the last disconnection as offline with lastSeen and stores it', async () => {
    const t = setup();
    t.contacts.messaged(BOB, ALICE);
    await t.bus.subscribe(ALICE);
    const a = fakeConnection(BOB).conn;
    await t.presence.connected(a);
    const before = Date.now();
    await t.presence.disconnected(a);
    await settle();
    const off = t.got[1]!;
    expect(off).toMatchObject({ user: ALICE, ev: 'presence.update', data: { address: BOB, online: false } });
    const lastSeen = Date.parse((off.data as { lastSeen: string }).lastSeen);
    expect(lastSeen).toBeGreaterThanOrEqual(before);
    expect(lastSeen).toBeLessThanOrEqual(Date.now());
    expect(t.users.setLastSeen).toHaveBeenCalledTimes(1);
    expect(t.users.setLastSeen).toHaveBeenCalledWith([BOB], new Date(lastSeen));
  });

  it('does not announce a connection it never saw going away', async () => {
    const t = setup();
    t.contacts.messaged(BOB, ALICE);
    await t.bus.subscribe(ALICE);
    await t.presence.disconnected(fakeConnection(BOB).conn);
    await settle();
    expect(t.got).toEqual([]);
    expect(t.users.setLastSeen).not.toHaveBeenCalled();
  });

  it('publishes nothing for a user nobody watches', async () => {
    const t = setup();
    const publish = vi.spyOn(t.bus, 'publish');
    const c = fakeConnection(BOB).conn;
    await t.presence.connected(c);
    await t.presence.disconnected(c);
    expect(publish).not.toHaveBeenCalled();
  });

  it('announces offline even when the last-seen time cannot be stored, with a warning', async () => {
    const t = setup();
    t.contacts.messaged(BOB, ALICE);
    await t.bus.subscribe(ALICE);
    t.users.setLastSeen.mockRejectedValueOnce(new Error('database down'));
    await t.presence.wentOffline(BOB, 1_700_000_000_000);
    await settle();
    expect(t.got).toEqual([{ user: ALICE, ev: 'presence.update', data: { address: BOB, online: false, lastSeen: new Date(1_700_000_000_000).toISOString() }, skip: '' }]);
    expect(t.cap.at('warn')).toEqual([expect.objectContaining({ msg: 'last seen not stored' })]);
  });

  it('fails connected() when the contacts store is unavailable (the gateway then refuses the connection)', async () => {
    const t = setup();
    t.contacts.failWatchers = new Error('database down');
    await expect(t.presence.connected(fakeConnection(BOB).conn)).rejects.toThrow('database down');
  });

  it('fails connected() when the presence store is unavailable', async () => {
    const t = setup();
    vi.spyOn(t.store, 'connect').mockRejectedValueOnce(new Error('redis down'));
    await expect(t.presence.connected(fakeConnection(BOB).conn)).rejects.toThrow('redis down');
  });
});

describe('PresenceService: query', () => {
  it('answers online, last seen (live or stored) and never seen, checksumming the addresses', async () => {
    const t = setup();
    await t.presence.connected(fakeConnection(ALICE).conn);
    const bob = fakeConnection(BOB).conn;
    await t.presence.connected(bob);
    await t.presence.disconnected(bob);
    const bobSeen = (await t.store.query([BOB])).get(BOB)!.lastSeen!;
    t.users.stored.set(CAROL, new Date('2025-05-05T05:05:05.000Z'));
    t.users.lastSeen.mockClear();

    for (const u of [ALICE, BOB, CAROL, DAVE, ERIN]) await t.contacts.add(u, FRANK);

    const states = await t.presence.query(FRANK, [ALICE, BOB, CAROL, DAVE, ERIN.toLowerCase()]);
    expect(states).toEqual([
      { address: ALICE, online: true, lastSeen: null },
      { address: BOB, online: false, lastSeen: new Date(bobSeen).toISOString() },
      { address: CAROL, online: false, lastSeen: '2025-05-05T05:05:05.000Z' },
      { address: DAVE, online: false, lastSeen: null },
      { address: ERIN, online: false, lastSeen: null },
    ]);
    // Only users with nothing in the live store are looked up in the database.
    expect(t.users.lastSeen).toHaveBeenCalledTimes(1);
    expect(t.users.lastSeen).toHaveBeenCalledWith([CAROL, DAVE, ERIN]);
  });

  it('does not touch the database when every user is online', async () => {
    const t = setup();
    await t.presence.connected(fakeConnection(ALICE).conn);
    expect(await t.presence.query(ALICE, [ALICE])).toEqual([{ address: ALICE, online: true, lastSeen: null }]);
    expect(t.users.lastSeen).not.toHaveBeenCalled();
  });

  it('rejects a malformed address', async () => {
    const t = setup();
    await expect(t.presence.query(ALICE, ['0x123'])).rejects.toThrow();
  });
});

describe('PresenceService: contacts', () => {
  it('adds a contact (checksummed) and describes it with presence, last message and unread count', async () => {
    const t = setup();
    const { conn } = fakeConnection(ALICE);
    await t.presence.connected(fakeConnection(ERIN).conn);
    await t.contacts.add(ERIN, ALICE);
    const { contact } = await t.presence.addContact(conn, { id: 'r1', type: 'contacts.add', address: ERIN.toLowerCase() });
    expect(contact).toEqual({ address: ERIN, presence: { address: ERIN, online: true, lastSeen: null }, lastMessage: null, unread: 0 });
    expect(t.contacts.rows).toContainEqual(expect.objectContaining({ owner: ALICE, peer: ERIN, sharesPresence: true }));
    expect(t.messages.byIds).toHaveBeenCalledWith([]);
  });

  it('adding the same contact twice keeps one row', async () => {
    const t = setup();
    const { conn } = fakeConnection(ALICE);
    await t.presence.addContact(conn, { id: 'r1', type: 'contacts.add', address: BOB });
    await t.presence.addContact(conn, { id: 'r2', type: 'contacts.add', address: BOB });
    expect(t.contacts.rows).toHaveLength(1);
  });

  it('refuses to add oneself with SELF_MESSAGE, also in another letter case', async () => {
    const t = setup();
    const { conn } = fakeConnection(ERIN);
    for (const address of [ERIN, ERIN.toLowerCase()]) {
      const err = await t.presence.addContact(conn, { id: 'r1', type: 'contacts.add', address }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BlockRtcError);
      expect((err as BlockRtcError).code).toBe('SELF_MESSAGE');
    }
    expect(t.contacts.rows).toEqual([]);
  });

  it('refuses a malformed address without storing anything', async () => {
    const t = setup();
    const { conn } = fakeConnection(ALICE);
    await expect(t.presence.addContact(conn, { id: 'r1', type: 'contacts.add', address: 'not-an-address' })).rejects.toThrow();
    expect(t.contacts.rows).toEqual([]);
  });

  it('refuses a mixed-case address with a wrong checksum without storing anything', async () => {
    const t = setup();
    const { conn } = fakeConnection(ALICE);
    expect(ERIN_WRONG_CASE).not.toBe(ERIN);
    expect(ERIN_WRONG_CASE.toLowerCase()).toBe(ERIN.toLowerCase());
    await expect(t.presence.addContact(conn, { id: 'r1', type: 'contacts.add', address: ERIN_WRONG_CASE })).rejects.toThrow();
    expect(t.contacts.rows).toEqual([]);
  });

  // The schema refuses a wrong checksum first; below it the service still answers with a client error.
  it('answers a wrong checksum with a BlockRtcError (a client error), not a plain error', async () => {
    const t = setup();
    const { conn } = fakeConnection(ALICE);
    const err = await t.presence.addContact(conn, { id: 'r1', type: 'contacts.add', address: ERIN_WRONG_CASE }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BlockRtcError);
  });

  it('lists contacts with the last message of each conversation and unread counts', async () => {
    const t = setup();
    const { conn } = fakeConnection(ALICE);
    const withBob = await t.contacts.add(ALICE, BOB);
    await t.contacts.add(ALICE, CAROL);
    await t.contacts.add(BOB, ALICE);
    await t.contacts.add(CAROL, ALICE);
    withBob.lastMessageId = 42n;
    withBob.unread = 3;
    t.messages.stored.push({
      id: 42n,
      conversation: conversationKey(ALICE, BOB),
      sender: BOB,
      recipient: ALICE,
      clientId: 'c-42',
      kind: 'text',
      body: 'hello',
      attachmentId: null,
      attachment: null,
      createdAt: new Date('2026-01-02T03:04:05.000Z'),
      deliveredAt: null,
      withheld: false,
      readAt: null,
    });
    await t.presence.connected(fakeConnection(CAROL).conn);

    const { contacts } = await t.presence.listContacts(conn);
    expect(contacts).toEqual([
      {
        address: BOB,
        presence: { address: BOB, online: false, lastSeen: null },
        lastMessage: { id: '42', from: BOB, kind: 'text', text: 'hello', createdAt: '2026-01-02T03:04:05.000Z' },
        unread: 3,
      },
      { address: CAROL, presence: { address: CAROL, online: true, lastSeen: null }, lastMessage: null, unread: 0 },
    ]);
    expect(t.messages.byIds).toHaveBeenCalledWith([{ conversation: conversationKey(ALICE, BOB), id: 42n }]);
  });

  it('lists nothing, without queries, for a user without contacts', async () => {
    const t = setup();
    expect(await t.presence.listContacts(fakeConnection(ALICE).conn)).toEqual({ contacts: [] });
    expect(t.messages.byIds).not.toHaveBeenCalled();
    expect(t.users.lastSeen).not.toHaveBeenCalled();
  });
});

describe('PresenceService: privacy', () => {
  it('a stranger who adds a user as contact gets no pushes, and unknown from query and contacts.list', async () => {
    const t = setup();
    const mallory = fakeConnection(DAVE).conn;
    await t.presence.addContact(mallory, { id: 'r1', type: 'contacts.add', address: BOB });
    await t.bus.subscribe(DAVE);
    const bob = fakeConnection(BOB).conn;
    await t.presence.connected(bob);
    await t.presence.disconnected(bob);
    await t.presence.connected(bob);
    await settle();
    expect(t.got).toEqual([]);
    expect(await t.presence.query(DAVE, [BOB])).toEqual([{ address: BOB, online: null, lastSeen: null }]);
    expect((await t.presence.listContacts(mallory)).contacts[0]!.presence).toEqual({ address: BOB, online: null, lastSeen: null });
  });

  it('an unknown user is not looked up in the presence store nor in the database', async () => {
    const t = setup();
    const live = vi.spyOn(t.store, 'query');
    t.users.stored.set(ERIN, new Date('2025-05-05T05:05:05.000Z'));
    expect(await t.presence.query(DAVE, [ERIN, ERIN.toLowerCase()])).toEqual([
      { address: ERIN, online: null, lastSeen: null },
      { address: ERIN, online: null, lastSeen: null },
    ]);
    expect(live).not.toHaveBeenCalled();
    expect(t.users.lastSeen).not.toHaveBeenCalled();
    expect(t.contacts.sharingWith).toHaveBeenCalledTimes(1);
    expect(t.contacts.sharingWith).toHaveBeenCalledWith(DAVE, [ERIN]);
  });

  it('a user always sees its own presence', async () => {
    const t = setup();
    await t.presence.connected(fakeConnection(DAVE).conn);
    expect(await t.presence.query(DAVE, [DAVE])).toEqual([{ address: DAVE, online: true, lastSeen: null }]);
    expect(t.contacts.sharingWith).toHaveBeenCalledWith(DAVE, []);
  });

  it('answers each address by its own sharing: known and unknown in one query', async () => {
    const t = setup();
    t.contacts.messaged(BOB, DAVE);
    t.contacts.messaged(DAVE, CAROL); // Dave wrote to Carol; Carol never answered.
    await t.presence.connected(fakeConnection(BOB).conn);
    await t.presence.connected(fakeConnection(CAROL).conn);
    expect(await t.presence.query(DAVE, [BOB, CAROL])).toEqual([
      { address: BOB, online: true, lastSeen: null },
      { address: CAROL, online: null, lastSeen: null },
    ]);
    // Carol sees Dave, who wrote to her.
    expect(await t.presence.query(CAROL, [DAVE])).toEqual([{ address: DAVE, online: false, lastSeen: null }]);
  });

  it('once the user messages the stranger, the stranger sees its presence and gets its pushes', async () => {
    const t = setup();
    const mallory = fakeConnection(DAVE).conn;
    await t.presence.addContact(mallory, { id: 'r1', type: 'contacts.add', address: BOB });
    await t.bus.subscribe(DAVE);
    const bob = fakeConnection(BOB).conn;
    await t.presence.connected(bob);
    t.contacts.messaged(BOB, DAVE);
    expect(await t.presence.query(DAVE, [BOB])).toEqual([{ address: BOB, online: true, lastSeen: null }]);
    expect((await t.presence.listContacts(mallory)).contacts[0]!.presence).toEqual({ address: BOB, online: true, lastSeen: null });
    await t.presence.disconnected(bob);
    await settle();
    expect(t.got).toEqual([expect.objectContaining({ user: DAVE, ev: 'presence.update', data: expect.objectContaining({ address: BOB, online: false }) })]);
  });

  it('once the user adds the stranger, the stranger is told at once, sees its presence and gets its pushes', async () => {
    const t = setup();
    const dave = fakeConnection(DAVE).conn;
    await t.presence.addContact(dave, { id: 'r1', type: 'contacts.add', address: BOB });
    await t.bus.subscribe(DAVE);
    const bob = fakeConnection(BOB).conn;
    await t.presence.connected(bob);
    await settle();
    expect(t.got).toEqual([]);
    await t.presence.addContact(bob, { id: 'r2', type: 'contacts.add', address: DAVE });
    await settle();
    const online = { user: DAVE, ev: 'presence.update', data: { address: BOB, online: true, lastSeen: null }, skip: '' };
    expect(t.got).toEqual([online]);
    expect(await t.presence.query(DAVE, [BOB])).toEqual([{ address: BOB, online: true, lastSeen: null }]);
    // Adding again changes nothing and says nothing.
    await t.presence.addContact(bob, { id: 'r3', type: 'contacts.add', address: DAVE });
    await t.presence.disconnected(bob);
    await settle();
    expect(t.got).toEqual([online, expect.objectContaining({ user: DAVE, data: expect.objectContaining({ address: BOB, online: false }) })]);
  });

  it('receiving messages does not share: only the sender side of a message shares', async () => {
    const t = setup();
    t.contacts.messaged(DAVE, BOB); // Dave (a stranger) writes to Bob; Bob has a row for Dave now, not sharing.
    await t.bus.subscribe(DAVE);
    await t.presence.connected(fakeConnection(BOB).conn);
    await settle();
    expect(t.got).toEqual([]);
    expect(await t.presence.query(DAVE, [BOB])).toEqual([{ address: BOB, online: null, lastSeen: null }]);
    expect(t.contacts.rows.find((r) => r.owner === BOB && r.peer === DAVE)).toMatchObject({ sharesPresence: false });
  });
});
