import { Wallet } from 'ethers';
import { describe, expect, it } from 'vitest';
import { openDatabase } from '../../db/client.ts';
import { MessageStore, conversationKey, type InsertOutcome } from '../../db/messages.ts';
import { createTestDatabase } from '../../testkit/pg.ts';
import { createMetrics } from '../metrics.ts';
import { GroupCommitWriter } from './writer.ts';

describe('GroupCommitWriter', () => {
  it('commits concurrent sends together, in arrival order, resolving each after its commit', async () => {
    const database = await openDatabase({ url: null, dataDir: 'memory://', poolSize: 1 });
    await database.migrate();
    const store = new MessageStore(database);
    const metrics = createMetrics();
    const writer = new GroupCommitWriter(store, metrics, 50);
    const a = Wallet.createRandom().address;
    const b = Wallet.createRandom().address;
    const conversation = conversationKey(a, b);
    const outcomes = await Promise.all(
      Array.from({ length: 120 }, (_, i) =>
        writer.submit({ conversation, sender: a, recipient: b, clientId: `c${i}-xxxxxxxx`, kind: 'text', body: String(i), attachmentId: null }),
      ),
    );
    const ids = outcomes.map((o) => (o.ok ? o.id : -1n));
    expect([...ids].sort((x, y) => (x < y ? -1 : 1))).toEqual(ids);
    expect(await store.count()).toBe(120);
    const batches = (await metrics.commitBatch.get()).values.find((v) => v.metricName?.endsWith('_count'))!.value;
    expect(batches).toBeLessThanOrEqual(4); // 120 messages, at most 50 per commit
    expect(batches).toBeGreaterThanOrEqual(3);
    await writer.flushed();
    await database.close();
  });

  it('sends the next batch while one is outstanding on PostgreSQL and keeps every conversation in arrival order', async () => {
    const pg = await createTestDatabase('writer');
    const database = await openDatabase({ url: pg.url, dataDir: '', poolSize: 4 });
    try {
      await database.migrate();
      const store = new MessageStore(database.writer);
      const metrics = createMetrics();
      let inFlight = 0;
      let maxInFlight = 0;
      const insert = store.insertBatch.bind(store);
      store.insertBatch = async (batch) => {
        maxInFlight = Math.max(maxInFlight, ++inFlight);
        try {
          return await insert(batch);
        } finally {
          inFlight--;
        }
      };
      const writer = new GroupCommitWriter(store, metrics, 40, 2);
      const users = Array.from({ length: 21 }, () => Wallet.createRandom().address);
      const pairs = users.slice(1).map((u) => [users[0]!, u] as const);
      const submitted: { conversation: string; promise: Promise<InsertOutcome> }[] = [];
      // Waves of sends interleaved across 20 conversations while earlier commits are running.
      for (let wave = 0; wave < 6; wave++) {
        for (let i = 0; i < 50; i++) {
          const [a, b] = pairs[(i * 7 + wave) % pairs.length]!;
          const conversation = conversationKey(a, b);
          const msg = { conversation, sender: a, recipient: b, clientId: `w${wave}-${i}-xxxxxxxx`, kind: 'text' as const, body: `${wave}.${i}`, attachmentId: null };
          submitted.push({ conversation, promise: writer.submit(msg) });
        }
        await new Promise((r) => setTimeout(r, 2));
      }
      const outcomes = await Promise.all(submitted.map((s) => s.promise));
      const last = new Map<string, bigint>();
      outcomes.forEach((o, i) => {
        if (!o.ok) throw new Error('not stored');
        const prev = last.get(submitted[i]!.conversation);
        if (prev !== undefined) expect(o.id).toBeGreaterThan(prev);
        last.set(submitted[i]!.conversation, o.id);
      });
      expect(await store.count()).toBe(300);
      expect(maxInFlight).toBe(2);
      await writer.flushed();
    } finally {
      await database.close();
      await pg.drop();
    }
  });

  it('rejects every waiter of a failed commit and keeps serving', async () => {
    const database = await openDatabase({ url: null, dataDir: 'memory://', poolSize: 1 });
    await database.migrate();
    const store = new MessageStore(database);
    const writer = new GroupCommitWriter(store, createMetrics());
    const a = Wallet.createRandom().address;
    const b = Wallet.createRandom().address;
    const conversation = conversationKey(a, b);
    const bad = writer.submit({ conversation, sender: a, recipient: b, clientId: 'bad-client-1', kind: 'text', body: 'x', attachmentId: 'not-a-uuid' });
    await expect(bad).rejects.toThrow();
    const ok = await writer.submit({ conversation, sender: a, recipient: b, clientId: 'good-client-1', kind: 'text', body: 'x', attachmentId: null });
    expect(ok.ok).toBe(true);
    expect(await store.count()).toBe(1);
    await database.close();
  });
});
