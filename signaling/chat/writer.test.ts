import { Wallet } from 'ethers';
import { describe, expect, it } from 'vitest';
import type { NewMessage } from '../../db/messages.ts';
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

/** A store whose commits finish when the test says so; it records each batch it was sent. */
function manualStore() {
  const commits: { batch: NewMessage[]; finish(): void; fail(err: Error): void }[] = [];
  const store = {
    insertBatch: (batch: NewMessage[]) =>
      new Promise<InsertOutcome[]>((resolve, reject) => {
        commits.push({
          batch,
          finish: () => resolve(batch.map((m) => ({ ok: true, id: BigInt(m.clientId.slice(1)), createdAt: new Date(0), duplicate: false }))),
          fail: reject,
        });
      }),
  };
  return { store: store as unknown as MessageStore, commits };
}
const message = (i: number): NewMessage => ({ conversation: 'a:b', sender: 'a', recipient: 'b', clientId: `c${i}`, kind: 'text', body: String(i), attachmentId: null });
const turn = () => new Promise((r) => setImmediate(r));
const settled = async (p: Promise<unknown>) => {
  let done = false;
  void p.then(
    () => (done = true),
    () => (done = true),
  );
  await turn();
  return done;
};
async function histogram(h: ReturnType<typeof createMetrics>['commitBatch']) {
  const values = (await h.get()).values;
  const pick = (suffix: string) => values.find((v) => v.metricName?.endsWith(suffix))!.value;
  return { count: pick('_count'), sum: pick('_sum') };
}

describe('GroupCommitWriter batching', () => {
  it('sends what arrived in one turn as one batch, at most maxBatch long, with at most `concurrency` outstanding', async () => {
    const { store, commits } = manualStore();
    const metrics = createMetrics();
    const writer = new GroupCommitWriter(store, metrics, 3, 2);
    const results = Array.from({ length: 8 }, (_, i) => writer.submit(message(i)));
    expect(writer.pending).toBe(8);
    expect(commits).toHaveLength(0);
    await turn();
    expect(commits.map((c) => c.batch.map((m) => m.clientId))).toEqual([
      ['c0', 'c1', 'c2'],
      ['c3', 'c4', 'c5'],
    ]);
    expect(writer.pending).toBe(8);
    // More arrive while two commits are outstanding: they wait.
    results.push(writer.submit(message(8)));
    await turn();
    expect(commits).toHaveLength(2);
    expect(writer.pending).toBe(9);
    commits[0]!.finish();
    expect(await Promise.all(results.slice(0, 3))).toEqual([0n, 1n, 2n].map((id) => ({ ok: true, id, createdAt: new Date(0), duplicate: false })));
    expect(writer.pending).toBe(6);
    await turn();
    expect(commits[2]!.batch.map((m) => m.clientId)).toEqual(['c6', 'c7', 'c8']);
    expect(await settled(results[3]!)).toBe(false);
    commits[1]!.finish();
    commits[2]!.finish();
    expect((await Promise.all(results)).map((o) => o.ok && o.id)).toEqual([0n, 1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n]);
    expect(writer.pending).toBe(0);
    expect(await histogram(metrics.commitBatch)).toEqual({ count: 3, sum: 9 });
    expect((await histogram(metrics.commitSeconds)).count).toBe(3);
  });

  it('takes a queue of exactly maxBatch in one batch', async () => {
    const { store, commits } = manualStore();
    const writer = new GroupCommitWriter(store, createMetrics(), 4, 1);
    const results = Array.from({ length: 4 }, (_, i) => writer.submit(message(i)));
    await turn();
    expect(commits.map((c) => c.batch.length)).toEqual([4]);
    commits[0]!.finish();
    await Promise.all(results);
  });

  it('uses defaults of 500 per batch and two outstanding', async () => {
    const { store, commits } = manualStore();
    const writer = new GroupCommitWriter(store, createMetrics());
    const results = Array.from({ length: 1_501 }, (_, i) => writer.submit(message(i)));
    await turn();
    expect(commits.map((c) => c.batch.length)).toEqual([500, 500]);
    commits[0]!.finish();
    await turn();
    await turn();
    expect(commits.map((c) => c.batch.length)).toEqual([500, 500, 500]);
    commits[1]!.finish();
    await turn();
    await turn();
    expect(commits.map((c) => c.batch.length)).toEqual([500, 500, 500, 1]);
    commits[2]!.finish();
    commits[3]!.finish();
    expect(await Promise.all(results)).toHaveLength(1_501);
  });

  it('flushed() waits for the queue and every outstanding commit', async () => {
    const { store, commits } = manualStore();
    const writer = new GroupCommitWriter(store, createMetrics(), 2, 2);
    expect(await settled(writer.flushed())).toBe(true);
    const results = Array.from({ length: 5 }, (_, i) => writer.submit(message(i)));
    const flushed = writer.flushed();
    const flushed2 = writer.flushed();
    expect(await settled(flushed)).toBe(false);
    commits[1]!.finish();
    expect(await settled(flushed)).toBe(false);
    commits[0]!.finish();
    await turn();
    expect(commits).toHaveLength(3);
    expect(await settled(flushed)).toBe(false);
    commits[2]!.finish();
    await Promise.all(results);
    expect(await settled(flushed)).toBe(true);
    expect(await settled(flushed2)).toBe(true);
    expect(writer.pending).toBe(0);
  });

  it('rejects the waiters of a failed batch only, records no commit time for it, and goes on', async () => {
    const { store, commits } = manualStore();
    const metrics = createMetrics();
    const writer = new GroupCommitWriter(store, metrics, 2, 2);
    const results = Array.from({ length: 4 }, (_, i) => writer.submit(message(i)));
    await turn();
    const boom = new Error('disk full');
    commits[0]!.fail(boom);
    await expect(results[0]).rejects.toBe(boom);
    await expect(results[1]).rejects.toBe(boom);
    expect(writer.pending).toBe(2);
    expect(await settled(results[2]!)).toBe(false);
    commits[1]!.finish();
    expect((await results[3]!).ok).toBe(true);
    expect(writer.pending).toBe(0);
    expect((await histogram(metrics.commitSeconds)).count).toBe(1);
    expect((await histogram(metrics.commitBatch)).count).toBe(2);
    const later = writer.submit(message(9));
    await turn();
    commits[2]!.finish();
    expect((await later).ok).toBe(true);
    await writer.flushed();
  });
});
