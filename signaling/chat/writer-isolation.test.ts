import { Writable } from 'node:stream';
import { Wallet } from 'ethers';
import { describe, expect, it } from 'vitest';
import { openDatabase } from '../../db/client.ts';
import { MessageStore, conversationKey, type InsertOutcome, type NewMessage } from '../../db/messages.ts';
import { createLogger } from '../../infra/logger.ts';
import { chatSend } from '../../protocol/chat.ts';
import { BlockRtcError } from '../../protocol/errors.ts';
import { createTestDatabase } from '../../testkit/pg.ts';
import { createMetrics } from '../metrics.ts';
import { GroupCommitWriter, isConnectivityError } from './writer.ts';

/** A logger writing JSON lines into an array, as the node would to stdout. */
function captureLogger() {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  const log = createLogger({ log: { level: 'debug' }, nodeId: 'test', mode: 'signaling' } as never, sink);
  return { log, lines };
}

const settle = (p: Promise<InsertOutcome>) => p.then((o) => ({ ok: true as const, o }), (e: unknown) => ({ ok: false as const, e }));

describe('GroupCommitWriter isolation', () => {
  it('commits the rest of a batch when PostgreSQL refuses one row and gives only its sender MESSAGE_REJECTED, logging no bodies', async () => {
    const pg = await createTestDatabase('isolation');
    const database = await openDatabase({ url: pg.url, dataDir: '', poolSize: 2 });
    try {
      await database.migrate();
      const store = new MessageStore(database.writer);
      const { log, lines } = captureLogger();
      const writer = new GroupCommitWriter(store, createMetrics(), 500, 2, log);
      const senders = Array.from({ length: 40 }, () => Wallet.createRandom().address);
      const to = Wallet.createRandom().address;
      const row = (sender: string, i: number, body: string): NewMessage => ({
        conversation: conversationKey(sender, to),
        sender,
        recipient: to,
        clientId: `iso-${i}-xxxxxxxx`,
        kind: 'text',
        body,
        attachmentId: null,
      });
      // One tick, one batch: 39 good rows and one with U+0000 (which the schema refuses on
      // the wire; the writer must still contain it if one gets this far).
      const bad = 17;
      const results = await Promise.all(senders.map((s, i) => settle(writer.submit(row(s, i, i === bad ? `private-body-${i}\u0000end` : `private-body-${i}`)))));
      for (const [i, r] of results.entries()) {
        if (i === bad) {
          expect(r.ok).toBe(false);
          expect((r as { e: BlockRtcError }).e).toBeInstanceOf(BlockRtcError);
          expect((r as { e: BlockRtcError }).e.code).toBe('MESSAGE_REJECTED');
        } else {
          expect(r.ok).toBe(true);
        }
      }
      expect(await new MessageStore(database).count()).toBe(39);
      await writer.flushed();

      const out = lines.join('\n');
      expect(out).toContain('message refused by the database');
      expect(out).toContain('"code":"22021"');
      expect(out).not.toContain('private-body');
      expect(out).not.toMatch(/\\u0000|params|unnest|insert into/i);
    } finally {
      await database.close();
      await pg.drop();
    }
  });

  it('answers UNAVAILABLE with a retry hint while the database is unreachable, logs the outage once and its end once', async () => {
    let down = true;
    let n = 0;
    const store = {
      async insertBatch(batch: NewMessage[]): Promise<InsertOutcome[]> {
        await new Promise((r) => setTimeout(r, 1));
        if (down) throw Object.assign(new Error(`connect ECONNREFUSED 127.0.0.1:5432 params: ${batch.map((m) => m.body).join(',')}`), { code: 'ECONNREFUSED' });
        return batch.map(() => ({ ok: true, id: BigInt(++n), createdAt: new Date(), duplicate: false, withheld: false }));
      },
    } as unknown as MessageStore;
    const { log, lines } = captureLogger();
    const writer = new GroupCommitWriter(store, createMetrics(), 10, 2, log);
    const msg = (i: number): NewMessage => ({ conversation: 'a:b', sender: 'a', recipient: 'b', clientId: `c${i}`, kind: 'text', body: `private-body-${i}`, attachmentId: null });
    const failed = await Promise.all(Array.from({ length: 100 }, (_, i) => settle(writer.submit(msg(i)))));
    for (const r of failed) {
      expect(r.ok).toBe(false);
      const e = (r as { e: BlockRtcError }).e;
      expect(e.code).toBe('UNAVAILABLE');
      expect(e.extra.retryAfterMs).toBeGreaterThan(0);
    }
    expect(writer.unavailable).toBe(true);
    down = false;
    const ok = await Promise.all(Array.from({ length: 5 }, (_, i) => writer.submit(msg(100 + i))));
    expect(ok.every((o) => o.ok)).toBe(true);
    expect(writer.unavailable).toBe(false);
    const out = lines.join('\n');
    expect(lines.filter((l) => l.includes('database unreachable'))).toHaveLength(1);
    expect(lines.filter((l) => l.includes('database reachable again'))).toHaveLength(1);
    expect(out).toContain('"refusedSends":100');
    expect(out).not.toContain('private-body');
  });

  it('tells connectivity errors from refusals', () => {
    const pgError = (code: string, message = 'x') => Object.assign(new Error(message), { code });
    expect(isConnectivityError(pgError('ECONNREFUSED'))).toBe(true);
    expect(isConnectivityError(pgError('57P01', 'terminating connection due to administrator command'))).toBe(true);
    expect(isConnectivityError(pgError('57P03', 'the database system is starting up'))).toBe(true);
    expect(isConnectivityError(pgError('08006'))).toBe(true);
    expect(isConnectivityError(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isConnectivityError(Object.assign(new Error('Failed query: insert …'), { cause: pgError('08003') }))).toBe(true);
    expect(isConnectivityError(pgError('22021', 'invalid byte sequence for encoding "UTF8": 0x00'))).toBe(false);
    expect(isConnectivityError(pgError('23505', 'duplicate key value'))).toBe(false);
  });
});

describe('chat.send text', () => {
  const base = { type: 'chat.send', id: 'r1', to: Wallet.createRandom().address, clientId: 'abcdefgh12', kind: 'text' } as const;
  it('refuses text PostgreSQL cannot store as sent: U+0000 and lone surrogates', () => {
    expect(chatSend.safeParse({ ...base, text: 'a\u0000b' }).success).toBe(false);
    expect(chatSend.safeParse({ ...base, text: 'a\ud800b' }).success).toBe(false);
    expect(chatSend.safeParse({ ...base, text: 'a\udc00' }).success).toBe(false);
    expect(chatSend.safeParse({ ...base, text: '\ud83d' }).success).toBe(false);
  });
  it('takes any other text, astral characters included', () => {
    expect(chatSend.safeParse({ ...base, text: 'hi 👋 \u0001 \ufffd \ud83d\ude00' }).success).toBe(true);
  });
});

describe('logger', () => {
  it('logs errors by name, code and first line: no SQL, parameters, details or tokens', () => {
    const { log, lines } = captureLogger();
    const cause = Object.assign(new Error('invalid byte sequence for encoding "UTF8": 0x00'), { code: '22021', detail: 'Key (body)=(private-body-2) x', where: 'unnest' });
    const err = Object.assign(new Error('Failed query: insert into messages values ($1)\nparams: private-body-1,private-body-2'), { query: 'insert into messages', params: ['private-body-1'], cause });
    log.error({ err, token: 'eyJsecret', text: 'private-body-3', req: { body: 'private-body-4' } }, 'request failed');
    const out = lines.join('\n');
    expect(out).toContain('22021');
    expect(out).toContain('invalid byte sequence');
    expect(out).not.toMatch(/private-body|eyJsecret|insert into/);
  });
});
