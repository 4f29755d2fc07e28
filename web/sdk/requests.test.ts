import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { ChatMessage, MessageRequest } from '../../protocol/index.ts';
import { BlocksClient } from './blocks.ts';
import { ChatClient } from './chat.ts';
import { RequestsClient } from './requests.ts';
import { FakeSocket, settle } from './test-support/fake-socket.ts';
import { ME, open, reconnect, signedIn } from './test-support/signed-in.ts';

vi.setConfig({ testTimeout: 5_000 });

const STRANGER = '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed';
const OTHER = '0x3333333333333333333333333333333333333333';
const T = '2026-01-01T00:00:00.000Z';

function request(address: string, at = T): MessageRequest {
  return { address, presence: { address, online: null, lastSeen: null }, lastMessage: { id: '5', from: address, kind: 'text', text: 'hi', createdAt: at }, unread: 1 };
}
function msg(id: string, from: string): ChatMessage {
  return { id, conversation: 'c', from, to: ME, clientId: `c-${id}`, kind: 'text', text: 'hello', attachment: null, createdAt: T, deliveredAt: null, readAt: null };
}

async function setup() {
  const engine = signedIn();
  const chat = new ChatClient(engine);
  const blocks = new BlocksClient(engine);
  const requests = new RequestsClient(engine, blocks, chat);
  const ws = await open(engine);
  ws.reply(ws.request('chat.sync').id, { messages: [], cursor: null, more: false });
  await settle();
  return { engine, chat, blocks, requests, ws };
}

async function listed(ws: FakeSocket, requests: RequestsClient, list: MessageRequest[]) {
  const p = requests.list();
  await settle();
  ws.reply(ws.request('requests.list').id, { requests: list });
  return p;
}

beforeEach(() => FakeSocket.reset());

describe('RequestsClient', () => {
  it('lists requests newest first', async () => {
    const { requests, ws } = await setup();
    const list = await listed(ws, requests, [request(OTHER, '2026-01-01T00:00:00.000Z'), request(STRANGER, '2026-01-02T00:00:00.000Z')]);
    expect(list.map((r) => r.address)).toEqual([STRANGER, OTHER]);
    expect(requests.has(STRANGER.toLowerCase())).toBe(true);
  });

  it('accepting moves the sender out of the list and answers the new contact', async () => {
    const { requests, ws } = await setup();
    await listed(ws, requests, [request(STRANGER)]);
    const resolved = vi.fn();
    requests.on('resolved', resolved);
    const accepting = requests.accept(STRANGER.toLowerCase());
    await settle();
    const req = ws.request('requests.accept');
    expect(req.address).toBe(STRANGER);
    ws.reply(req.id, { contact: request(STRANGER) });
    expect((await accepting).address).toBe(STRANGER);
    expect(requests.requests).toEqual([]);
    expect(resolved).toHaveBeenCalledWith(expect.objectContaining({ address: STRANGER, action: 'accepted', contact: expect.objectContaining({ address: STRANGER }) }));
  });

  it('deleting one that is gone already rejects with REQUEST_NOT_FOUND and keeps the list', async () => {
    const { requests, ws } = await setup();
    await listed(ws, requests, [request(STRANGER)]);
    const deleting = requests.delete(STRANGER);
    await settle();
    ws.fail(ws.request('requests.delete').id, 'REQUEST_NOT_FOUND');
    await expect(deleting).rejects.toMatchObject({ code: 'REQUEST_NOT_FOUND' });
    expect(requests.has(STRANGER)).toBe(true);
  });

  it('blocking the sender blocks it and drops the request', async () => {
    const { requests, blocks, ws } = await setup();
    await listed(ws, requests, [request(STRANGER)]);
    const blocking = requests.block(STRANGER);
    await settle();
    ws.reply(ws.request('blocks.add').id, { block: { address: STRANGER, blockedAt: T } });
    await blocking;
    expect(blocks.isBlocked(STRANGER)).toBe(true);
    expect(requests.requests).toEqual([]);
  });

  it('follows what another device of mine did (requests.changed)', async () => {
    const { requests, ws } = await setup();
    await listed(ws, requests, [request(STRANGER), request(OTHER)]);
    const change = vi.fn();
    requests.on('change', change);
    ws.event('requests.changed', { address: STRANGER, action: 'deleted' });
    expect(requests.requests.map((r) => r.address)).toEqual([OTHER]);
    expect(change).toHaveBeenCalledTimes(1);
  });

  it('lists again when a new conversation starts with an incoming message, and after a reconnect', async () => {
    const { requests, ws } = await setup();
    await listed(ws, requests, []);
    ws.event('chat.message', msg('9', STRANGER));
    await new Promise((r) => setTimeout(r, 150));
    expect(ws.requests('requests.list')).toHaveLength(2);
    // More messages from the same conversation do not ask again.
    ws.event('chat.message', msg('10', STRANGER));
    await new Promise((r) => setTimeout(r, 150));
    expect(ws.requests('requests.list')).toHaveLength(2);

    const ws2 = await reconnect(ws);
    await new Promise((r) => setTimeout(r, 150));
    expect(ws2.requests('requests.list')).toHaveLength(1);
  });
});

describe('BlocksClient', () => {
  it('adds and removes blocks; removing one that was not blocked answers false', async () => {
    const { blocks, ws } = await setup();
    const changes = vi.fn();
    blocks.on('change', changes);
    const adding = blocks.add(STRANGER.toLowerCase());
    await settle();
    expect(ws.request('blocks.add').address).toBe(STRANGER);
    ws.reply(ws.request('blocks.add').id, { block: { address: STRANGER, blockedAt: T } });
    await adding;
    expect(blocks.isBlocked(STRANGER)).toBe(true);

    const removing = blocks.remove(STRANGER);
    await settle();
    ws.reply(ws.request('blocks.remove').id, { removed: true });
    expect(await removing).toBe(true);
    expect(blocks.isBlocked(STRANGER)).toBe(false);
    expect(changes.mock.calls.map((c) => c[0])).toEqual([
      { address: STRANGER, blocked: true },
      { address: STRANGER, blocked: false },
    ]);

    const again = blocks.remove(OTHER);
    await settle();
    ws.reply(ws.request('blocks.remove').id, { removed: false });
    expect(await again).toBe(false);
    expect(changes).toHaveBeenCalledTimes(2);
  });

  it('refuses to block myself with the server code', async () => {
    const { blocks, ws } = await setup();
    const adding = blocks.add(ME);
    await settle();
    ws.fail(ws.request('blocks.add').id, 'BLOCK_SELF');
    await expect(adding).rejects.toMatchObject({ code: 'BLOCK_SELF' });
    expect(blocks.blocked).toEqual([]);
  });

  it('stays in step with my other devices: blocks.changed, and a fresh list after a reconnect', async () => {
    const { blocks, ws } = await setup();
    const listing = blocks.list();
    await settle();
    ws.reply(ws.request('blocks.list').id, { blocks: [{ address: OTHER, blockedAt: T }] });
    await listing;
    ws.event('blocks.changed', { address: STRANGER, blocked: true, at: T });
    expect(blocks.isBlocked(STRANGER)).toBe(true);
    ws.event('blocks.changed', { address: OTHER, blocked: false, at: T });
    expect(blocks.blocked.map((b) => b.address)).toEqual([STRANGER]);

    // While offline another device unblocked STRANGER and blocked OTHER.
    const changes = vi.fn();
    blocks.on('change', changes);
    const ws2 = await reconnect(ws);
    ws2.reply(ws2.request('blocks.list').id, { blocks: [{ address: OTHER, blockedAt: T }] });
    await settle();
    expect(blocks.blocked.map((b) => b.address)).toEqual([OTHER]);
    expect(changes.mock.calls.map((c) => c[0])).toEqual([
      { address: STRANGER, blocked: false },
      { address: OTHER, blocked: true },
    ]);
  });
});
