import { Wallet } from 'ethers';
import { describe, expect, it, vi } from 'vitest';
import type { BlockStore } from '../../db/blocks.ts';
import type { ContactStore } from '../../db/contacts.ts';
import { BlockRtcError } from '../../protocol/errors.ts';
import type { Events } from '../events.ts';
import type { PresenceService } from '../presence/service.ts';
import { openRelations } from '../../testkit/fakes.ts';
import type { Connection } from '../ws/connection.ts';
import { RequestsService } from './service.ts';

const me = Wallet.createRandom().address;
const peer = Wallet.createRandom().address;
const conn = { id: 'node-1.3', address: me } as Connection;
const at = new Date('2030-01-01T00:00:00Z');
const row = { owner: me, peer, addedAt: at, lastMessageId: null, lastMessageAt: null, unread: 0, sharesPresence: true };

function setup(over: { accept?: unknown; deleted?: boolean; added?: unknown; removed?: boolean } = {}) {
  const contacts = {
    accept: vi.fn(async () => ('accept' in over ? over.accept : { ...row, startedSharing: true })),
    deleteRequest: vi.fn(async () => over.deleted ?? true),
    list: vi.fn(async () => [row]),
  };
  const blocks = {
    add: vi.fn(async () => ('added' in over ? over.added : { row: { owner: me, blocked: peer, createdAt: at }, created: true })),
    remove: vi.fn(async () => over.removed ?? true),
    list: vi.fn(async () => [{ owner: me, blocked: peer, createdAt: at }]),
  };
  const presence = { describe: vi.fn(async () => [{ address: peer }]), startedSharing: vi.fn(async () => undefined) };
  const sent: [string, string, unknown, unknown][] = [];
  const events = { toUser: (user: string, ev: string, data: unknown, opts: unknown) => void sent.push([user, ev, data, opts]) };
  const relations = openRelations();
  const service = new RequestsService({
    contacts: contacts as unknown as ContactStore,
    blocks: blocks as unknown as BlockStore,
    presence: presence as unknown as PresenceService,
    relations,
    events: events as unknown as Events,
  });
  return { service, contacts, blocks, presence, sent, relations };
}

const codeOf = (p: Promise<unknown>) => p.then(() => 'ok', (e: unknown) => (e instanceof BlockRtcError ? e.code : String(e)));

describe('RequestsService', () => {
  it('lists requests only', async () => {
    const t = setup();
    expect(await t.service.list(conn)).toEqual({ requests: [{ address: peer }] });
    expect(t.contacts.list).toHaveBeenCalledWith(me, 500, 'requests');
  });

  it('accepts: tells the cache, the peer (presence) and my other devices, once', async () => {
    const t = setup();
    expect(await t.service.accept(conn, { type: 'requests.accept', id: 'r', address: peer.toLowerCase() })).toEqual({ contact: { address: peer } });
    expect(t.relations.changes).toEqual([[me, peer]]);
    expect(t.presence.startedSharing).toHaveBeenCalledWith(me, peer);
    expect(t.sent).toEqual([[me, 'requests.changed', { address: peer, action: 'accepted' }, { skip: 'node-1.3' }]]);
    const again = setup({ accept: { ...row, startedSharing: false } });
    await again.service.accept(conn, { type: 'requests.accept', id: 'r', address: peer });
    expect(again.sent).toEqual([]);
    expect(again.relations.changes).toEqual([]);
  });

  it('refuses accepting or deleting what is no request, or oneself', async () => {
    expect(await codeOf(setup({ accept: null }).service.accept(conn, { type: 'requests.accept', id: 'r', address: peer }))).toBe('REQUEST_NOT_FOUND');
    expect(await codeOf(setup({ deleted: false }).service.delete(conn, { type: 'requests.delete', id: 'r', address: peer }))).toBe('REQUEST_NOT_FOUND');
    expect(await codeOf(setup().service.accept(conn, { type: 'requests.accept', id: 'r', address: me }))).toBe('SELF_MESSAGE');
    expect(await codeOf(setup().service.delete(conn, { type: 'requests.delete', id: 'r', address: me }))).toBe('SELF_MESSAGE');
  });

  it('deletes and tells my other devices', async () => {
    const t = setup();
    expect(await t.service.delete(conn, { type: 'requests.delete', id: 'r', address: peer })).toEqual({});
    expect(t.sent).toEqual([[me, 'requests.changed', { address: peer, action: 'deleted' }, { skip: 'node-1.3' }]]);
  });

  it('blocks and unblocks: both directions of the cache and my other devices, only on a change', async () => {
    const t = setup();
    expect(await t.service.block(conn, { type: 'blocks.add', id: 'r', address: peer })).toEqual({ block: { address: peer, blockedAt: at.toISOString() } });
    expect(t.relations.changes).toEqual([
      [peer, me],
      [me, peer],
    ]);
    expect(t.sent).toEqual([[me, 'blocks.changed', { address: peer, blocked: true, at: at.toISOString() }, { skip: 'node-1.3' }]]);
    expect(await t.service.unblock(conn, { type: 'blocks.remove', id: 'r', address: peer })).toEqual({ removed: true });
    expect(t.sent.at(-1)).toEqual([me, 'blocks.changed', { address: peer, blocked: false, at: expect.any(String) }, { skip: 'node-1.3' }]);
    expect(await t.service.blocks(conn)).toEqual({ blocks: [{ address: peer, blockedAt: at.toISOString() }] });

    const repeat = setup({ added: { row: { owner: me, blocked: peer, createdAt: at }, created: false }, removed: false });
    await repeat.service.block(conn, { type: 'blocks.add', id: 'r', address: peer });
    expect(await repeat.service.unblock(conn, { type: 'blocks.remove', id: 'r', address: peer })).toEqual({ removed: false });
    expect(repeat.sent).toEqual([]);
    expect(repeat.relations.changes).toEqual([]);
  });

  it('refuses blocking oneself and a full list', async () => {
    expect(await codeOf(setup().service.block(conn, { type: 'blocks.add', id: 'r', address: me.toLowerCase() }))).toBe('BLOCK_SELF');
    expect(await codeOf(setup().service.unblock(conn, { type: 'blocks.remove', id: 'r', address: me }))).toBe('BLOCK_SELF');
    expect(await codeOf(setup({ added: null }).service.block(conn, { type: 'blocks.add', id: 'r', address: peer }))).toBe('BLOCK_LIMIT');
  });
});

describe('RequestsService when PostgreSQL is unreachable', () => {
  it('answers UNAVAILABLE, not INTERNAL', async () => {
    const t = setup();
    t.blocks.add.mockRejectedValueOnce(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
    expect(await codeOf(t.service.block(conn, { type: 'blocks.add', id: 'r', address: peer }))).toBe('UNAVAILABLE');
  });
});
