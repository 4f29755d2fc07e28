import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { GroupMessage } from '../../protocol/index.ts';
import { ChatClient, type ChatEntry } from './chat.ts';
import { groupConversation } from './conversation.ts';
import type { Engine } from './engine.ts';
import { FakeSocket, settle } from './test-support/fake-socket.ts';
import { ME, open, signedIn } from './test-support/signed-in.ts';

vi.setConfig({ testTimeout: 5_000 });

const BOB = '0x2222222222222222222222222222222222222222';
const CAROL = '0x3333333333333333333333333333333333333333';
const GID = '0b3c4d5e-0000-4000-8000-00000000000a';
const KEY = groupConversation(GID);

function gmsg(id: string, over: Partial<GroupMessage> = {}): GroupMessage {
  return { id, group: GID, conversation: KEY, from: BOB, clientId: `c-${id}`, kind: 'text', text: `m${id}`, attachment: null, system: null, createdAt: new Date(Number(id) * 1000).toISOString(), ...over };
}

/** Connects and answers the first sync with these group messages. */
async function setup(groupMessages: GroupMessage[] = []): Promise<{ engine: Engine; chat: ChatClient; ws: FakeSocket }> {
  const engine = signedIn();
  const chat = new ChatClient(engine);
  const ws = await open(engine);
  const sync = ws.request('chat.sync');
  expect(sync.groups).toBe(true);
  ws.reply(sync.id, { messages: [], groupMessages, cursor: groupMessages.at(-1)?.id ?? null, more: false });
  await settle();
  return { engine, chat, ws };
}

async function sendAcked(chat: ChatClient, ws: FakeSocket, text: string, id: string): Promise<ChatEntry> {
  const entry = await chat.sendText(KEY, text);
  ws.reply(ws.requests('group.send').at(-1)!.id, { id, createdAt: new Date().toISOString(), conversation: KEY, duplicate: false });
  await settle();
  return entry;
}

const tick = () => new Promise((r) => setTimeout(r, 80));

beforeEach(() => FakeSocket.reset());
afterEach(() => vi.useRealTimers());

describe('ChatClient group conversations: sending', () => {
  it('sends to a group with group.send and its own client id, and keeps it in the group conversation', async () => {
    const { chat, ws } = await setup();
    const entry = await chat.sendText(KEY.toUpperCase().replace('G:', 'g:'), 'hello all');
    expect(entry).toMatchObject({ peer: KEY, group: GID, to: KEY, status: 'sending', outgoing: true, receipts: null });
    const send = ws.request('group.send');
    expect(send).toMatchObject({ group: GID, clientId: entry.clientId, kind: 'text', text: 'hello all' });
    expect(ws.requests('chat.send')).toHaveLength(0);
    ws.reply(send.id, { id: '70', createdAt: '2026-01-01T00:00:00.000Z', conversation: KEY, duplicate: false });
    await settle();
    expect(entry).toMatchObject({ id: '70', status: 'sent' });
    expect(chat.messages(KEY)).toEqual([entry]);
  });

  it('a group send the server refuses fails that message only', async () => {
    const { chat, ws } = await setup();
    const bad = await chat.sendText(KEY, 'bad');
    const next = await chat.sendText(BOB, 'to bob');
    ws.fail(ws.request('group.send').id, 'NOT_GROUP_MEMBER', 'You are not a member of this group');
    await settle();
    expect(bad).toMatchObject({ status: 'failed', error: 'You are not a member of this group' });
    expect(ws.request('chat.send')).toMatchObject({ to: BOB, clientId: next.clientId });
  });

  it('drops the copy of my own message that another device of mine receives', async () => {
    const { chat, ws } = await setup();
    const entry = await sendAcked(chat, ws, 'mine', '71');
    ws.event('group.message', gmsg('71', { from: ME, clientId: entry.clientId, text: 'mine' }));
    expect(chat.messages(KEY)).toEqual([entry]);
  });
});

describe('ChatClient group conversations: read by N of M', () => {
  it('asks for counts after the ack and again after each receipt, until everyone has read', async () => {
    const { chat, ws } = await setup();
    const entry = await sendAcked(chat, ws, 'hi', '80');
    await tick();
    const first = ws.request('group.receipts');
    expect(first).toMatchObject({ group: GID, ids: ['80'] });
    ws.reply(first.id, { receipts: [{ id: '80', of: 2, delivered: 0, read: 0 }] });
    await settle();
    expect(entry).toMatchObject({ status: 'sent', receipts: { of: 2, delivered: 0, read: 0 } });

    // Two members' cursors move in one burst: one request.
    ws.event('group.receipt', { group: GID, status: 'delivered', by: BOB, upTo: '80', at: '2026-01-01T00:00:01.000Z' });
    ws.event('group.receipt', { group: GID, status: 'delivered', by: CAROL, upTo: '80', at: '2026-01-01T00:00:01.000Z' });
    await tick();
    expect(ws.requests('group.receipts')).toHaveLength(2);
    ws.reply(ws.request('group.receipts').id, { receipts: [{ id: '80', of: 2, delivered: 2, read: 1 }] });
    await settle();
    expect(entry).toMatchObject({ status: 'delivered', receipts: { of: 2, delivered: 2, read: 1 } });

    ws.event('group.receipt', { group: GID, status: 'read', by: CAROL, upTo: '80', at: '2026-01-01T00:00:02.000Z' });
    await tick();
    ws.reply(ws.request('group.receipts').id, { receipts: [{ id: '80', of: 2, delivered: 2, read: 2 }] });
    await settle();
    expect(entry).toMatchObject({ status: 'read', receipts: { read: 2 } });

    // Fully read: a later receipt does not ask about it again.
    ws.event('group.receipt', { group: GID, status: 'read', by: BOB, upTo: '80', at: '2026-01-01T00:00:03.000Z' });
    await tick();
    expect(ws.requests('group.receipts')).toHaveLength(3);
  });

  it('a failed count request leaves the message as it was (asked again with the next receipt)', async () => {
    const { chat, ws } = await setup();
    const entry = await sendAcked(chat, ws, 'hi', '81');
    await tick();
    ws.fail(ws.request('group.receipts').id, 'UNAVAILABLE');
    await settle();
    expect(entry).toMatchObject({ status: 'sent', receipts: null });
    ws.event('group.receipt', { group: GID, status: 'read', by: BOB, upTo: '81', at: '2026-01-01T00:00:01.000Z' });
    await tick();
    expect(ws.request('group.receipts')).toMatchObject({ ids: ['81'] });
  });

  it('gives who-read details on demand; they exist for group messages only', async () => {
    const { chat, ws } = await setup();
    const entry = await sendAcked(chat, ws, 'hi', '82');
    const details = chat.receiptDetails(entry);
    await settle();
    const req = ws.requests('group.receipts').find((r) => r.details === true)!;
    expect(req).toMatchObject({ group: GID, ids: ['82'] });
    ws.reply(req.id, { receipts: [{ id: '82', of: 2, delivered: 2, read: 1, deliveredBy: [BOB, CAROL], readBy: [BOB] }] });
    expect(await details).toMatchObject({ readBy: [BOB] });
    expect(entry.receipts).toEqual({ of: 2, delivered: 2, read: 1 });

    const direct = await chat.sendText(BOB, 'x');
    await expect(chat.receiptDetails(direct)).rejects.toMatchObject({ code: 'INVALID_FIELDS' });
  });
});

describe('ChatClient group conversations: incoming', () => {
  it('syncs group messages with 1:1 ones and acknowledges them with one delivered cursor per group', async () => {
    const { chat, ws } = await setup([gmsg('10'), gmsg('12', { from: CAROL }), gmsg('11')]);
    expect(chat.messages(KEY).map((e) => e.id)).toEqual(['10', '11', '12']);
    expect(chat.messages(KEY)[0]).toMatchObject({ group: GID, outgoing: false, peer: KEY });
    await tick();
    const delivered = ws.requests('group.delivered');
    expect(delivered).toEqual([expect.objectContaining({ group: GID, upTo: '12' })]);
    expect(ws.requests('chat.delivered')).toHaveLength(0);
  });

  it('marks the open group read up to its newest message, and reads arriving ones at once', async () => {
    const { chat, ws } = await setup([gmsg('20'), gmsg('21')]);
    chat.setOpenConversation(KEY);
    await settle();
    expect(ws.request('group.read')).toMatchObject({ group: GID, upTo: '21' });
    ws.event('group.message', gmsg('22'));
    await settle();
    expect(ws.request('group.read')).toMatchObject({ upTo: '22' });
    expect(chat.messages(KEY).every((e) => e.status === 'read')).toBe(true);
  });

  it('what another device of mine read is read here too', async () => {
    const { chat, ws } = await setup([gmsg('30'), gmsg('31'), gmsg('32')]);
    ws.event('group.receipt', { group: GID, status: 'read', by: ME, upTo: '31', at: '2026-01-01T00:00:01.000Z' });
    expect(chat.messages(KEY).map((e) => e.readAt !== null)).toEqual([true, true, false]);
    expect(ws.requests('group.receipts')).toHaveLength(0);
  });

  it('loads group history, system messages included', async () => {
    const { chat, ws } = await setup();
    const loading = chat.loadHistory(KEY, 2);
    await settle();
    const req = ws.request('group.history');
    expect(req).toMatchObject({ group: GID, limit: 2 });
    ws.reply(req.id, { messages: [gmsg('41'), gmsg('40', { kind: 'system', from: ME, text: null, system: { action: 'created', by: ME, name: 'Team', members: [ME, BOB] } })], before: '40' });
    expect(await loading).toEqual({ count: 2, more: true });
    const [sys, text] = chat.messages(KEY);
    expect(sys).toMatchObject({ kind: 'system', outgoing: false, system: { action: 'created' } });
    expect(text).toMatchObject({ id: '41', text: 'm41' });
    void chat.loadHistory(KEY);
    await settle();
    expect(ws.request('group.history').before).toBe('40');
  });

  it('typing: per member of the group, sent with group.typing, cleared by that member\'s message', async () => {
    const { chat, ws } = await setup();
    const typing = vi.fn();
    chat.on('typing', typing);
    ws.event('group.typing', { group: GID, from: BOB, typing: true });
    expect(typing).toHaveBeenLastCalledWith({ peer: KEY, from: BOB, typing: true });
    ws.event('group.message', gmsg('50'));
    expect(typing).toHaveBeenLastCalledWith({ peer: KEY, from: BOB, typing: false });
    chat.setTyping(KEY, true);
    await settle();
    expect(ws.request('group.typing')).toMatchObject({ group: GID, typing: true });
  });
});
