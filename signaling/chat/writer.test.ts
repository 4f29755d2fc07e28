import { Wallet } from 'ethers';
import { describe, expect, it } from 'vitest';
import { openDatabase } from '../../db/client.ts';
import { MessageStore, conversationKey } from '../../db/messages.ts';
import { createMetrics } from '../metrics.ts';
import { GroupCommitWriter } from './writer.ts';

describe('GroupCommitWriter', () => {
  it('commits concurrent sends together, in arrival order, resolving each after its commit', async () => {
    const database = await openDatabase({ url: null, dataDir: 'memory://', poolSize: 1 });
    await database.migrate();
    const store = new MessageStore(database.db);
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

  it('rejects every waiter of a failed commit and keeps serving', async () => {
    const database = await openDatabase({ url: null, dataDir: 'memory://', poolSize: 1 });
    await database.migrate();
    const store = new MessageStore(database.db);
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
