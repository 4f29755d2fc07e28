import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Wallet } from 'ethers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, query } from '../testkit/pg.ts';
import { MIGRATIONS_FOLDER, openDatabase, type Database } from './client.ts';
import { ContactStore } from './contacts.ts';
import { MessageStore, conversationKey, type NewMessage } from './messages.ts';

const addr = () => Wallet.createRandom().address;
let n = 0;
const msg = (sender: string, recipient: string): NewMessage => ({
  conversation: conversationKey(sender, recipient),
  sender,
  recipient,
  clientId: `c-${++n}-${Math.random().toString(36).slice(2)}`,
  kind: 'text',
  body: `text ${n}`,
  attachmentId: null,
});

/** Who shares presence with whom, on PostgreSQL and on the embedded PGlite. */
describe.each(['postgres', 'pglite'] as const)('ContactStore presence sharing on %s', (kind) => {
  let database: Database;
  let drop: () => Promise<void> = async () => undefined;
  let store: MessageStore;
  let contacts: ContactStore;

  beforeAll(async () => {
    if (kind === 'postgres') {
      const db = await createTestDatabase('contacts');
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

  const row = async (owner: string, peer: string) => (await contacts.list(owner)).find((r) => r.peer === peer);

  it('a sent message shares the sender with the recipient, not the other way round', async () => {
    const [x, w] = [addr(), addr()];
    await store.insertBatch([msg(w, x)]);
    expect(await row(w, x)).toMatchObject({ sharesPresence: true });
    expect(await row(x, w)).toMatchObject({ sharesPresence: false });
    expect(await contacts.sharingWith(x, [w])).toEqual(new Set([w]));
    expect(await contacts.sharingWith(w, [x])).toEqual(new Set());
    // x has w as a contact and w shares: x watches w; w has x as a contact but x does not share.
    expect(await contacts.watchers(w)).toEqual([x]);
    expect(await contacts.watchers(x)).toEqual([]);
  });

  it('sharing is sticky: later messages received do not take it back', async () => {
    const [x, w] = [addr(), addr()];
    await store.insertBatch([msg(x, w)]);
    await store.insertBatch([msg(w, x), msg(w, x)]);
    expect(await row(x, w)).toMatchObject({ sharesPresence: true, unread: 2 });
    expect(await row(w, x)).toMatchObject({ sharesPresence: true, unread: 1 });
    expect((await contacts.watchers(x)).sort()).toEqual([w]);
    expect((await contacts.watchers(w)).sort()).toEqual([x]);
  });

  it('in one batch both directions share', async () => {
    const [x, w] = [addr(), addr()];
    await store.insertBatch([msg(x, w), msg(w, x)]);
    expect(await contacts.sharingWith(x, [w])).toEqual(new Set([w]));
    expect(await contacts.sharingWith(w, [x])).toEqual(new Set([x]));
  });

  it('adding a contact shares, also on a row that existed without sharing, keeping its counters', async () => {
    const [x, w, stranger] = [addr(), addr(), addr()];
    // The stranger adds x: it shares its own presence with x, x does not share with it.
    expect(await contacts.add(stranger, x)).toMatchObject({ owner: stranger, peer: x, sharesPresence: true, startedSharing: true });
    expect(await contacts.watchers(x)).toEqual([]);
    expect(await contacts.sharingWith(stranger, [x])).toEqual(new Set());
    // w wrote to x: x's row for w exists, unread 1, not sharing; x then adds w.
    await store.insertBatch([msg(w, x)]);
    expect(await row(x, w)).toMatchObject({ sharesPresence: false, unread: 1 });
    expect(await contacts.add(x, w)).toMatchObject({ sharesPresence: true, unread: 1, startedSharing: true });
    expect(await contacts.add(x, w)).toMatchObject({ sharesPresence: true, unread: 1, startedSharing: false });
    expect(await contacts.sharingWith(w, [x, stranger])).toEqual(new Set([x]));
    expect(await contacts.watchers(x)).toEqual([w]);
  });

  it('sharingWith answers several owners in one query and nothing for none', async () => {
    const [v, a, b, c] = [addr(), addr(), addr(), addr()];
    await store.insertBatch([msg(a, v), msg(v, b)]);
    await contacts.add(c, v);
    expect(await contacts.sharingWith(v, [a, b, c])).toEqual(new Set([a, c]));
    expect(await contacts.sharingWith(v, [])).toEqual(new Set());
  });
});

describe('migration 0004_presence_sharing', () => {
  let dir = '';
  let drop: () => Promise<void> = async () => undefined;
  afterAll(async () => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    await drop();
  });

  it('backfills sharing where the owner sent the peer a message or added the peer', async () => {
    const db = await createTestDatabase('backfill');
    drop = db.drop;
    // The migrations up to 0003, then rows as the old code wrote them, then 0004.
    dir = mkdtempSync(join(tmpdir(), 'migrations-'));
    cpSync(MIGRATIONS_FOLDER, dir, { recursive: true });
    const journalPath = join(dir, 'meta', '_journal.json');
    const journal = JSON.parse(readFileSync(journalPath, 'utf8')) as { entries: { tag: string }[] };
    const at = journal.entries.findIndex((e) => e.tag === '0004_presence_sharing');
    expect(at).toBeGreaterThan(0);
    writeFileSync(journalPath, JSON.stringify({ ...journal, entries: journal.entries.slice(0, at) }));
    const { default: pg } = await import('pg');
    const { drizzle } = await import('drizzle-orm/node-postgres');
    const { migrate } = await import('drizzle-orm/node-postgres/migrator');
    const pool = new pg.Pool({ connectionString: db.url, max: 1 });
    const [sender, receiver, adder, added] = [addr(), addr(), addr(), addr()];
    try {
      await migrate(drizzle(pool), { migrationsFolder: dir });
      const conv = conversationKey(sender, receiver);
      const [m] = (
        await pool.query<{ id: string }>(`insert into messages (conversation, sender, recipient, client_id, kind, body) values ($1, $2, $3, 'c1', 'text', 'hi') returning id`, [
          conv,
          sender,
          receiver,
        ])
      ).rows;
      await pool.query(`insert into contacts (owner, peer, last_message_id, last_message_at, unread) values ($1, $2, $3, now(), 0), ($2, $1, $3, now(), 1), ($4, $5, null, null, 0)`, [
        sender,
        receiver,
        m!.id,
        adder,
        added,
      ]);
      await migrate(drizzle(pool), { migrationsFolder: MIGRATIONS_FOLDER });
    } finally {
      await pool.end();
    }
    const rows = await query<{ owner: string; peer: string; shares_presence: boolean }>(db.url, 'select owner, peer, shares_presence from contacts');
    const shares = Object.fromEntries(rows.map((r) => [`${r.owner}>${r.peer}`, r.shares_presence]));
    expect(shares).toEqual({
      [`${sender}>${receiver}`]: true,
      [`${receiver}>${sender}`]: false,
      [`${adder}>${added}`]: true,
    });
  });
});
