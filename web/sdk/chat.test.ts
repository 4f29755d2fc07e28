import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ChatMessage } from '../../protocol/index.ts';
import { ChatClient, type ChatEntry } from './chat.ts';
import { Engine } from './engine.ts';
import { MemoryStore, writeJson } from './storage.ts';
import { FakeSocket, settle } from './test-support/fake-socket.ts';

// A lost answer shows up as a hung promise: fail fast instead of at the suite's long default.
vi.setConfig({ testTimeout: 5_000 });

const ME = '0x1111111111111111111111111111111111111111';
const PEER = '0x2222222222222222222222222222222222222222';

function setup(storage = new MemoryStore()) {
  writeJson(storage, 'blockrtc.session.v1', { address: ME, token: 'tok', expiresAt: Date.now() + 3_600_000 });
  const engine = new Engine({ baseUrl: 'http://test', storage, tabStorage: new MemoryStore(), WebSocketImpl: FakeSocket.impl, reconnectPolicy: { nextRetryDelayInMs: () => 0 } });
  const chat = new ChatClient(engine);
  engine.resume();
  return { engine, chat, storage };
}

/** Opens a connection and answers the sync that follows with `messages`. */
async function connect(engine: Engine, messages: ChatMessage[] = []): Promise<FakeSocket> {
  const done = engine.connect();
  await settle();
  const ws = FakeSocket.last;
  ws.open({ address: ME });
  await done;
  await settle();
  ws.reply(ws.request('chat.sync').id, { messages, cursor: messages.at(-1)?.id ?? null, more: false });
  await settle();
  return ws;
}

async function reconnectAfterDrop(ws: FakeSocket): Promise<FakeSocket> {
  ws.drop();
  await new Promise((r) => setTimeout(r, 0));
  await settle();
  const next = FakeSocket.last;
  expect(next).not.toBe(ws);
  next.open({ address: ME });
  await settle();
  return next;
}

function msg(id: string, over: Partial<ChatMessage> = {}): ChatMessage {
  return { id, conversation: 'conv', from: PEER, to: ME, clientId: `c-${id}`, kind: 'text', text: `m${id}`, attachment: null, createdAt: new Date(Number(id) * 1000).toISOString(), deliveredAt: null, readAt: null, ...over };
}

function sendResult(id: string) {
  return { id, createdAt: new Date().toISOString(), conversation: 'conv', duplicate: false };
}

beforeEach(() => FakeSocket.reset());
afterEach(() => vi.useRealTimers());

describe('ChatClient outbox', () => {
  it('queues a message while offline and sends it with its clientId once connected', async () => {
    const { engine, chat } = setup();
    const entry = await chat.sendText(PEER.toLowerCase(), 'hello');
    expect(entry).toMatchObject({ id: null, status: 'queued', peer: PEER, outgoing: true });
    expect(chat.pendingCount).toBe(1);

    const ws = await connect(engine);
    const send = ws.request('chat.send');
    expect(send).toMatchObject({ to: PEER, clientId: entry.clientId, kind: 'text', text: 'hello' });
    expect(entry.status).toBe('sending');
    ws.reply(send.id, sendResult('10'));
    await settle();
    expect(entry).toMatchObject({ id: '10', status: 'sent' });
    expect(chat.pendingCount).toBe(0);
  });

  it('sends again with the same clientId after the link dropped mid-send', async () => {
    const { engine, chat } = setup();
    const ws = await connect(engine);
    const entry = await chat.sendText(PEER, 'x');
    const first = ws.request('chat.send');
    expect(entry.status).toBe('sending');

    const ws2 = await reconnectAfterDrop(ws);
    expect(entry.status).toBe('queued');
    ws2.reply(ws2.request('chat.sync').id, { messages: [], cursor: null, more: false });
    await settle();
    const second = ws2.request('chat.send');
    expect(second.clientId).toBe(first.clientId);
    ws2.reply(second.id, { ...sendResult('11'), duplicate: true });
    await settle();
    expect(entry).toMatchObject({ id: '11', status: 'sent' });
    expect(chat.messages(PEER)).toHaveLength(1);
  });

  it('keeps the outbox in storage, so a reload still sends what was queued', async () => {
    const storage = new MemoryStore();
    const first = setup(storage);
    const entry = await first.chat.sendText(PEER, 'later');
    const { engine, chat } = setup(storage);
    expect(chat.pendingCount).toBe(1);
    const ws = await connect(engine);
    expect(ws.request('chat.send')).toMatchObject({ clientId: entry.clientId, text: 'later' });
  });

  it('marks a message the server refuses as failed and goes on with the next one', async () => {
    const { engine, chat } = setup();
    const ws = await connect(engine);
    const bad = await chat.sendText(PEER, 'bad');
    const good = await chat.sendText(PEER, 'good');
    ws.fail(ws.request('chat.send').id, 'INVALID_FIELDS', 'text too long');
    await settle();
    expect(bad).toMatchObject({ status: 'failed', error: 'text too long' });
    const next = ws.request('chat.send');
    expect(next.clientId).toBe(good.clientId);
    ws.reply(next.id, sendResult('12'));
    await settle();
    expect(good.status).toBe('sent');
    expect(chat.pendingCount).toBe(0);
  });

  it('waits retryAfterMs when rate limited, then retries the same message', async () => {
    vi.useFakeTimers();
    const { engine, chat } = setup();
    const ws = await connect(engine);
    const entry = await chat.sendText(PEER, 'x');
    const first = ws.request('chat.send');
    ws.fail(first.id, 'RATE_LIMITED', 'slow', { retryAfterMs: 2000 });
    await vi.advanceTimersByTimeAsync(1999);
    expect(ws.requests('chat.send')).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    const again = ws.requests('chat.send');
    expect(again).toHaveLength(2);
    expect(again[1]!.clientId).toBe(first.clientId);
    expect(entry.status).toBe('sending');
  });

  it('rejects an address that is not one before queueing anything', async () => {
    const { chat } = setup();
    await expect(chat.sendText('not-an-address', 'x')).rejects.toMatchObject({ code: 'INVALID_FIELDS' });
    expect(chat.pendingCount).toBe(0);
  });
});

describe('ChatClient sync and dedupe', () => {
  it('syncs after connecting, page by page from the stored cursor', async () => {
    const { engine, chat, storage } = setup();
    const synced = vi.fn();
    chat.on('synced', synced);
    const done = engine.connect();
    await settle();
    const ws = FakeSocket.last;
    ws.open({ address: ME });
    await done;
    await settle();
    const first = ws.request('chat.sync');
    expect(first.after).toBeUndefined();
    ws.reply(first.id, { messages: [msg('1'), msg('2')], cursor: '2', more: true });
    await settle();
    const second = ws.request('chat.sync');
    expect(second.after).toBe('2');
    ws.reply(second.id, { messages: [msg('3')], cursor: '3', more: false });
    await settle();
    expect(storage.getItem(`blockrtc.cursor.${ME}`)).toBe('3');
    expect(synced).toHaveBeenCalledWith({ count: 3 });
    expect(chat.messages(PEER).map((e) => e.id)).toEqual(['1', '2', '3']);

    // The next connection starts where this one stopped.
    const ws2 = await reconnectAfterDrop(ws);
    expect(ws2.request('chat.sync').after).toBe('3');
  });

  it('ignores a second copy of a message (same id) but merges its progress', async () => {
    const { engine, chat } = setup();
    const added: ChatEntry[] = [];
    chat.on('message', ({ entry }) => added.push(entry));
    const ws = await connect(engine);
    ws.event('chat.message', msg('5'));
    const ws2 = await reconnectAfterDrop(ws);
    ws2.reply(ws2.request('chat.sync').id, { messages: [msg('5', { readAt: '2026-01-01T00:00:00.000Z' }), msg('6')], cursor: '6', more: false });
    await settle();
    expect(added.map((e) => e.id)).toEqual(['5', '6']);
    expect(chat.messages(PEER)).toHaveLength(2);
    expect(chat.messages(PEER)[0]!.readAt).toBe('2026-01-01T00:00:00.000Z');
  });

  it('does not duplicate my own message when the server echoes it', async () => {
    const { engine, chat } = setup();
    const ws = await connect(engine);
    const entry = await chat.sendText(PEER, 'mine');
    ws.reply(ws.request('chat.send').id, sendResult('20'));
    await settle();
    ws.event('chat.message', msg('20', { from: ME, to: PEER, clientId: entry.clientId, text: 'mine' }));
    expect(chat.messages(PEER)).toEqual([entry]);
    expect(entry.status).toBe('sent');
  });

  it('survives a sync cut short by a lost connection', async () => {
    const { engine, chat } = setup();
    const synced = vi.fn();
    chat.on('synced', synced);
    const done = engine.connect();
    await settle();
    const ws = FakeSocket.last;
    ws.open({ address: ME });
    await done;
    await settle();
    ws.request('chat.sync');
    ws.drop();
    await settle();
    expect(synced).toHaveBeenCalledWith({ count: 0 });
  });
});

describe('ChatClient receipts', () => {
  it('acknowledges incoming messages as delivered in one batch', async () => {
    const { engine } = setup();
    const ws = await connect(engine);
    ws.event('chat.message', msg('7'));
    ws.event('chat.message', msg('8'));
    ws.event('chat.message', msg('9', { deliveredAt: '2026-01-01T00:00:00.000Z' }));
    await new Promise((r) => setTimeout(r, 40));
    const delivered = ws.requests('chat.delivered');
    expect(delivered).toHaveLength(1);
    expect(delivered[0]).toMatchObject({ peer: PEER, ids: ['7', '8'] });
  });

  it('applies delivered and read receipts; a read receipt covers older messages too', async () => {
    const { engine, chat } = setup();
    const ws = await connect(engine);
    const entries: ChatEntry[] = [];
    for (const [i, id] of ['30', '31', '32'].entries()) {
      entries.push(await chat.sendText(PEER, `t${i}`));
      ws.reply(ws.requests('chat.send')[i]!.id, sendResult(id));
      await settle();
    }
    const receipts = vi.fn();
    chat.on('receipt', receipts);
    ws.event('chat.receipt', { status: 'delivered', by: PEER, ids: ['30'], at: '2026-01-01T00:00:01.000Z' });
    expect(entries.map((e) => e.status)).toEqual(['delivered', 'sent', 'sent']);
    expect(entries[0]!.deliveredAt).toBe('2026-01-01T00:00:01.000Z');

    ws.event('chat.receipt', { status: 'read', by: PEER, ids: ['31'], at: '2026-01-01T00:00:02.000Z' });
    expect(entries.map((e) => e.status)).toEqual(['read', 'read', 'sent']);
    expect(receipts).toHaveBeenCalledTimes(2);

    // A late delivered receipt does not undo read.
    ws.event('chat.receipt', { status: 'delivered', by: PEER, ids: ['31'], at: '2026-01-01T00:00:03.000Z' });
    expect(entries[1]!.status).toBe('read');
  });

  it('marks the open conversation read up to its newest incoming message', async () => {
    const { engine, chat } = setup();
    const ws = await connect(engine, [msg('40'), msg('41')]);
    chat.setOpenConversation(PEER);
    await settle();
    expect(ws.request('chat.read')).toMatchObject({ peer: PEER, upTo: '41' });
    expect(chat.messages(PEER).every((e) => e.status === 'read')).toBe(true);
  });
});
