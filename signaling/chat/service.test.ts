import { Wallet } from 'ethers';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Config } from '../../config/config.ts';
import type { AttachmentMeta, AttachmentStore } from '../../db/attachments.ts';
import { conversationKey, type InsertOutcome, type MessageStore, type NewMessage, type StoredMessage } from '../../db/messages.ts';
import { decodeDelivery, type Bus } from '../../infra/bus/bus.ts';
import { Events } from '../events.ts';
import type { Logger } from '../../infra/logger.ts';
import { BlockRtcError } from '../../protocol/errors.ts';
import type { Request } from '../../protocol/index.ts';
import { createMetrics } from '../metrics.ts';
import { MemoryRateLimiter } from '../ratelimit/memory.ts';
import type { Connection } from '../ws/connection.ts';
import { ChatService } from './service.ts';
import type { GroupCommitWriter } from './writer.ts';
import { openRelations } from '../../testkit/fakes.ts';
import type { Relations } from '../requests/relations.ts';

const me = Wallet.createRandom().address;
const peer = Wallet.createRandom().address;
const conv = conversationKey(me, peer);
const conn = { id: 'node-1.7', address: me } as Connection;

const stored = (id: bigint, over: Partial<StoredMessage> = {}): StoredMessage => ({
  id,
  conversation: conv,
  sender: me,
  recipient: peer,
  clientId: `client-${id}`,
  kind: 'text',
  body: `m${id}`,
  attachmentId: null,
  createdAt: new Date(Number(id) * 1000),
  deliveredAt: null,
  readAt: null,
  withheld: false,
  attachment: null,
  ...over,
});

/** The service over in-process fakes; each records what it was asked. */
function setup(opts: { outcome?: InsertOutcome; pending?: number; attachments?: AttachmentMeta[]; publishFails?: boolean; limit?: number; relations?: Relations } = {}) {
  const published: { user: string; skip: string; sentAt: number; ev: string; data: Record<string, unknown> }[] = [];
  const bus = {
    publish: vi.fn(async (user: string, payload: string) => {
      const d = decodeDelivery(payload);
      const f = JSON.parse(d.frame) as { ev: string; data: Record<string, unknown> };
      published.push({ user, skip: d.skip, sentAt: d.sentAt, ev: f.ev, data: f.data });
      if (opts.publishFails) throw new Error('bus down');
    }),
  } as unknown as Bus;
  const submitted: NewMessage[] = [];
  const writer = {
    pending: opts.pending ?? 0,
    submit: vi.fn(async (m: NewMessage) => {
      submitted.push(m);
      return opts.outcome ?? { ok: true, id: 42n, createdAt: new Date('2030-01-01T00:00:00Z'), duplicate: false, withheld: false };
    }),
  } as unknown as GroupCommitWriter;
  const messages = {
    history: vi.fn(async (): Promise<StoredMessage[]> => []),
    since: vi.fn(async (): Promise<{ messages: StoredMessage[]; more: boolean }> => ({ messages: [], more: false })),
    markDelivered: vi.fn(async (_c: string, _r: string, ids: bigint[]) => ({ ids, at: new Date('2030-01-02T00:00:00Z') })),
    markRead: vi.fn(async () => ({ ids: [5n, 6n], at: new Date('2030-01-03T00:00:00Z') })),
  };
  const attachments = { meta: vi.fn(async (id: string) => opts.attachments?.find((a) => a.id === id) ?? null) } as unknown as AttachmentStore;
  const limiter = new MemoryRateLimiter();
  const metrics = createMetrics();
  const log = { warn: vi.fn() } as unknown as Logger;
  const config = { limits: { messages: { limit: opts.limit ?? 100, windowMs: 60_000 }, pendingWrites: 10 } } as Config;
  const service = new ChatService({ config, messages: messages as unknown as MessageStore, receipts: messages as unknown as MessageStore, attachments, writer, events: new Events(bus, log), limiter, metrics, relations: opts.relations ?? openRelations(), log });
  return { service, published, submitted, writer, messages, attachments, limiter, metrics, log, config };
}

const send = (over: Partial<Request<'chat.send'>> = {}): Request<'chat.send'> => ({ type: 'chat.send', id: 'r1', to: peer.toLowerCase(), clientId: 'client-0001', kind: 'text', text: 'hello', ...over }) as Request<'chat.send'>;
const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e: unknown) => (e instanceof BlockRtcError ? e.code : String(e)),
  );
const counter = async (c: ReturnType<typeof createMetrics>['rateLimited'] | ReturnType<typeof createMetrics>['messagesIn'], label?: string) =>
  (await c.get()).values.find((v) => !label || v.labels.limit === label)?.value ?? 0;

afterEach(() => {
  vi.restoreAllMocks();
});

describe('ChatService.send', () => {
  it('stores a text message and publishes it to the recipient (timed) and to the sender’s other devices', async () => {
    vi.spyOn(Date, 'now').mockReturnValue(1_234_567);
    const s = setup();
    const res = await s.service.send(conn, send());
    expect(res).toEqual({ id: '42', createdAt: '2030-01-01T00:00:00.000Z', conversation: conv, duplicate: false });
    expect(s.submitted).toEqual([{ conversation: conv, sender: me, recipient: peer, clientId: 'client-0001', kind: 'text', body: 'hello', attachmentId: null }]);
    const message = {
      id: '42',
      conversation: conv,
      from: me,
      to: peer,
      clientId: 'client-0001',
      kind: 'text',
      text: 'hello',
      attachment: null,
      createdAt: '2030-01-01T00:00:00.000Z',
      deliveredAt: null,
      readAt: null,
    };
    expect(s.published).toEqual([
      { user: peer, skip: '', sentAt: 1_234_567, ev: 'chat.message', data: message },
      { user: me, skip: 'node-1.7', sentAt: 0, ev: 'chat.message', data: message },
    ]);
    expect(await counter(s.metrics.messagesIn)).toBe(1);
  });

  it('publishes a retry again (its first node may have died before publishing) without counting it, and refuses a reused client id', async () => {
    const dup = setup({ outcome: { ok: true, id: 7n, createdAt: new Date(0), duplicate: true, withheld: false } });
    expect(await dup.service.send(conn, send())).toMatchObject({ id: '7', duplicate: true });
    expect(dup.published.map((p) => [p.user, p.ev, p.data.id])).toEqual([
      [peer, 'chat.message', '7'],
      [me, 'chat.message', '7'],
    ]);
    expect(await counter(dup.metrics.messagesIn)).toBe(0);
    const conflict = setup({ outcome: { ok: false, reason: 'idempotency_conflict' } });
    expect(await codeOf(conflict.service.send(conn, send()))).toBe('IDEMPOTENCY_CONFLICT');
    expect(conflict.published).toEqual([]);
  });

  it('refuses messages to oneself', async () => {
    const s = setup();
    expect(await codeOf(s.service.send(conn, send({ to: me.toLowerCase() })))).toBe('SELF_MESSAGE');
    expect(await codeOf(s.service.typing(conn, { type: 'chat.typing', id: 't', to: me.toLowerCase(), typing: true }))).toBe('SELF_MESSAGE');
    expect(s.submitted).toEqual([]);
  });

  it('limits each sender by the configured rule and says when to retry', async () => {
    const s = setup({ limit: 2 });
    const hit = vi.spyOn(s.limiter, 'hit');
    await s.service.send(conn, send());
    await s.service.send(conn, send());
    expect(hit).toHaveBeenCalledWith('msg', me, s.config.limits.messages);
    const err = await s.service.send(conn, send()).catch((e: BlockRtcError) => e);
    expect(err).toBeInstanceOf(BlockRtcError);
    expect((err as BlockRtcError).code).toBe('RATE_LIMITED');
    expect((err as BlockRtcError).extra.retryAfterMs).toBeGreaterThan(59_000);
    expect(await counter(s.metrics.rateLimited, 'messages')).toBe(1);
    expect(s.submitted).toHaveLength(2);
    // Another sender has its own budget.
    expect(await codeOf(s.service.send({ id: 'node-1.8', address: peer } as Connection, send({ to: me })))).toBe('ok');
  });

  it('refuses while the writer is at its limit of pending messages', async () => {
    const at = setup({ pending: 10 });
    const err = await at.service.send(conn, send()).catch((e: BlockRtcError) => e);
    expect(err).toMatchObject({ code: 'UNAVAILABLE', message: 'This node is busy storing messages; try again shortly', extra: { retryAfterMs: 1000 } });
    expect(await counter(at.metrics.rateLimited, 'pending_writes')).toBe(1);
    expect(at.submitted).toEqual([]);
    expect(await codeOf(setup({ pending: 9 }).service.send(conn, send()))).toBe('ok');
  });

  it('sends media only with an attachment of this sender, for this peer, of the right kind', async () => {
    const good: AttachmentMeta = { id: 'att-1', owner: me, peer, mime: 'audio/ogg', size: 321 };
    const s = setup({
      attachments: [
        good,
        { ...good, id: 'att-other-owner', owner: peer },
        { ...good, id: 'att-other-peer', peer: Wallet.createRandom().address },
        { ...good, id: 'att-video', mime: 'video/webm' },
      ],
    });
    const media = (attachmentId: string, kind: 'audio' | 'video' = 'audio') => s.service.send(conn, send({ kind, text: undefined, attachmentId }));
    expect(await codeOf(media('missing'))).toBe('ATTACHMENT_INVALID');
    expect(await codeOf(media('att-other-owner'))).toBe('ATTACHMENT_INVALID');
    expect(await codeOf(media('att-other-peer'))).toBe('ATTACHMENT_INVALID');
    expect(await codeOf(media('att-video'))).toBe('ATTACHMENT_INVALID');
    expect(s.submitted).toEqual([]);
    expect(await codeOf(media('att-video', 'video'))).toBe('ok');
    await s.service.send(conn, send({ kind: 'audio', text: 'ignored', attachmentId: 'att-1', clientId: 'client-0002' }));
    expect(s.submitted.at(-1)).toEqual({ conversation: conv, sender: me, recipient: peer, clientId: 'client-0002', kind: 'audio', body: null, attachmentId: 'att-1' });
    expect(s.published.at(-1)!.data).toMatchObject({ kind: 'audio', text: null, attachment: { id: 'att-1', mime: 'audio/ogg', size: 321 } });
  });

  it('logs a failed publish and still answers: the message is stored', async () => {
    const s = setup({ publishFails: true });
    expect(await codeOf(s.service.send(conn, send()))).toBe('ok');
    await new Promise((r) => setImmediate(r));
    // One line per burst of failures, not one per event.
    expect(s.log.warn).toHaveBeenCalledTimes(1);
    expect(s.log.warn).toHaveBeenCalledWith(expect.objectContaining({ err: 'bus down' }), 'event not published; its users will be told to resync');
  });
});

describe('ChatService while a backend is down', () => {
  it('lets sends through when the rate limiter cannot be asked (Redis down), warning once per few seconds', async () => {
    const s = setup();
    vi.spyOn(s.limiter, 'hit').mockRejectedValue(new Error('redis down'));
    expect(await codeOf(s.service.send(conn, send()))).toBe('ok');
    expect(await codeOf(s.service.send(conn, send({ clientId: 'client-0002' })))).toBe('ok');
    expect(s.submitted).toHaveLength(2);
    const warned = (s.log.warn as ReturnType<typeof vi.fn>).mock.calls.filter((c) => String(c[1]).startsWith('message rate limit unavailable'));
    expect(warned).toHaveLength(1);
    expect(warned[0]![0]).toEqual({ err: 'redis down' });
  });

  it('still refuses over the limit when the limiter answers', async () => {
    const s = setup({ limit: 1 });
    expect(await codeOf(s.service.send(conn, send()))).toBe('ok');
    expect(await codeOf(s.service.send(conn, send({ clientId: 'client-0002' })))).toBe('RATE_LIMITED');
  });

  it('answers reads UNAVAILABLE with a retry hint while PostgreSQL is unreachable, and passes other errors on', async () => {
    const s = setup();
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    s.messages.history.mockRejectedValueOnce(refused);
    const err = await s.service.history(conn, { type: 'chat.history', id: 'h', peer, limit: 10 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BlockRtcError);
    expect(err).toMatchObject({ code: 'UNAVAILABLE', extra: { retryAfterMs: expect.any(Number) } });
    s.messages.since.mockRejectedValueOnce(refused);
    expect(await codeOf(s.service.sync(conn, { type: 'chat.sync', id: 's', limit: 10 }))).toBe('UNAVAILABLE');
    const bug = new TypeError('not a connectivity problem');
    s.messages.history.mockRejectedValueOnce(bug);
    await expect(s.service.history(conn, { type: 'chat.history', id: 'h', peer, limit: 10 })).rejects.toBe(bug);
  });
});

describe('ChatService reads and receipts', () => {
  it('pages history, offering the next cursor only after a full page', async () => {
    const s = setup();
    s.messages.history.mockResolvedValueOnce([stored(9n), stored(8n)]);
    const full = await s.service.history(conn, { type: 'chat.history', id: 'h', peer: peer.toLowerCase(), before: '10', limit: 2 });
    expect(s.messages.history).toHaveBeenLastCalledWith(conv, 10n, 2, me);
    expect(full.before).toBe('8');
    expect(full.messages.map((m) => m.id)).toEqual(['9', '8']);
    expect(full.messages[0]).toMatchObject({ from: me, to: peer, text: 'm9', createdAt: new Date(9000).toISOString() });
    s.messages.history.mockResolvedValueOnce([stored(3n)]);
    const last = await s.service.history(conn, { type: 'chat.history', id: 'h', peer, limit: 2 });
    expect(s.messages.history).toHaveBeenLastCalledWith(conv, null, 2, me);
    expect(last.before).toBeNull();
  });

  it('syncs and moves the cursor to the highest id seen, never back', async () => {
    const s = setup();
    s.messages.since.mockResolvedValueOnce({ messages: [stored(5n), stored(3n), stored(7n), stored(6n)], more: true });
    expect(await s.service.sync(conn, { type: 'chat.sync', id: 's', limit: 10 })).toMatchObject({ cursor: '7', more: true });
    expect(s.messages.since).toHaveBeenLastCalledWith(me, null, 10);
    s.messages.since.mockResolvedValueOnce({ messages: [stored(4n)], more: false });
    const again = await s.service.sync(conn, { type: 'chat.sync', id: 's', after: '20', limit: 10 });
    expect(s.messages.since).toHaveBeenLastCalledWith(me, 20n, 10);
    expect(again).toMatchObject({ cursor: '20', more: false });
    expect(again.messages.map((m) => m.id)).toEqual(['4']);
    expect(await s.service.sync(conn, { type: 'chat.sync', id: 's', limit: 10 })).toEqual({ messages: [], cursor: null, more: false });
  });

  it('sends delivery receipts to the peer and to the reader’s other devices', async () => {
    const s = setup();
    const res = await s.service.delivered(conn, { type: 'chat.delivered', id: 'd', peer: peer.toLowerCase(), ids: ['3', '4'] });
    expect(res).toEqual({ updated: ['3', '4'] });
    expect(s.messages.markDelivered).toHaveBeenCalledWith(conv, me, [3n, 4n]);
    const receipt = { status: 'delivered', by: me, ids: ['3', '4'], at: '2030-01-02T00:00:00.000Z' };
    expect(s.published).toEqual([
      { user: peer, skip: '', sentAt: 0, ev: 'chat.receipt', data: receipt },
      { user: me, skip: 'node-1.7', sentAt: 0, ev: 'chat.receipt', data: receipt },
    ]);
    s.messages.markDelivered.mockResolvedValueOnce({ ids: [], at: new Date() });
    expect(await s.service.delivered(conn, { type: 'chat.delivered', id: 'd', peer, ids: ['3'] })).toEqual({ updated: [] });
    expect(s.published).toHaveLength(2);
  });

  it('sends read receipts the same way', async () => {
    const s = setup();
    expect(await s.service.read(conn, { type: 'chat.read', id: 'r', peer: peer.toLowerCase(), upTo: '6' })).toEqual({ updated: ['5', '6'] });
    expect(s.messages.markRead).toHaveBeenCalledWith(conv, me, peer, 6n);
    expect(s.published.map((p) => [p.user, p.skip, p.data.status, p.data.at])).toEqual([
      [peer, '', 'read', '2030-01-03T00:00:00.000Z'],
      [me, 'node-1.7', 'read', '2030-01-03T00:00:00.000Z'],
    ]);
    s.messages.markRead.mockResolvedValueOnce({ ids: [], at: new Date() });
    expect(await s.service.read(conn, { type: 'chat.read', id: 'r', peer, upTo: '6' })).toEqual({ updated: [] });
    expect(s.published).toHaveLength(2);
  });

  it('relays typing to the peer only', async () => {
    const s = setup();
    expect(await s.service.typing(conn, { type: 'chat.typing', id: 't', to: peer.toLowerCase(), typing: true })).toEqual({});
    expect(s.published).toEqual([{ user: peer, skip: '', sentAt: 0, ev: 'chat.typing', data: { from: me, typing: true } }]);
  });
});

describe('ChatService with requests and blocks', () => {
  it('acks a withheld send as usual but publishes it only to the sender’s other devices', async () => {
    const relations = openRelations();
    const sent = vi.spyOn(relations, 'sent');
    const s = setup({ outcome: { ok: true, id: 11n, createdAt: new Date(0), duplicate: false, withheld: true }, relations });
    expect(await s.service.send(conn, send())).toEqual({ id: '11', createdAt: new Date(0).toISOString(), conversation: conv, duplicate: false });
    expect(s.published.map((p) => [p.user, p.skip, p.ev])).toEqual([[me, 'node-1.7', 'chat.message']]);
    // Sending accepts the peer: the cache learns it whatever the recipient did.
    expect(sent).toHaveBeenCalledWith(me, peer);
  });

  it.each([
    ['the reader has not accepted the sender (a request)', { accepted: false }],
    ['the sender blocked the reader', { blockedByPeer: true }],
    ['the reader blocked the sender', { blocking: true }],
  ])('keeps receipts and typing from the peer when %s, still telling the reader’s own devices', async (_label, over) => {
    const s = setup({ relations: openRelations(over) });
    expect(await s.service.delivered(conn, { type: 'chat.delivered', id: 'd', peer, ids: ['3', '4'] })).toEqual({ updated: ['3', '4'] });
    expect(await s.service.read(conn, { type: 'chat.read', id: 'r', peer, upTo: '6' })).toEqual({ updated: ['5', '6'] });
    expect(await s.service.typing(conn, { type: 'chat.typing', id: 't', to: peer, typing: true })).toEqual({});
    expect(s.published.map((p) => [p.user, p.ev, p.data.status])).toEqual([
      [me, 'chat.receipt', 'delivered'],
      [me, 'chat.receipt', 'read'],
    ]);
  });

  it('leaves delivered and read times off one’s own messages to a peer that has not accepted, in history and sync', async () => {
    const at = new Date('2030-01-05T00:00:00Z');
    const theirs = stored(4n, { sender: peer, recipient: me, deliveredAt: at, readAt: at });
    const mine = stored(5n, { deliveredAt: at, readAt: at });
    for (const accepted of [false, true]) {
      const s = setup({ relations: openRelations({ accepted }) });
      s.messages.history.mockResolvedValueOnce([mine, theirs]);
      s.messages.since.mockResolvedValueOnce({ messages: [theirs, mine], more: false });
      const history = (await s.service.history(conn, { type: 'chat.history', id: 'h', peer, limit: 10 })).messages;
      const synced = (await s.service.sync(conn, { type: 'chat.sync', id: 's', limit: 10 })).messages;
      const shown = accepted ? at.toISOString() : null;
      expect(history.map((m) => [m.id, m.deliveredAt, m.readAt])).toEqual([
        ['5', shown, shown],
        ['4', at.toISOString(), at.toISOString()],
      ]);
      expect(synced.map((m) => [m.id, m.readAt])).toEqual([
        ['4', at.toISOString()],
        ['5', shown],
      ]);
    }
  });

  it('answers UNAVAILABLE, not INTERNAL, when the relation cannot be read', async () => {
    const relations = openRelations();
    relations.get = async () => {
      throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    };
    const s = setup({ relations });
    expect(await codeOf(s.service.typing(conn, { type: 'chat.typing', id: 't', to: peer, typing: true }))).toBe('UNAVAILABLE');
  });
});
