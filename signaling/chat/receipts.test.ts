import { describe, expect, it, vi } from 'vitest';
import type { DeliveredMark, ReadMark, ReceiptUpdate } from '../../db/messages.ts';
import { ReceiptWriter } from './receipts.ts';

const at = new Date('2030-01-01T00:00:00Z');

function fakeStore(opts: { fail?: unknown[] } = {}) {
  const failures = [...(opts.fail ?? [])];
  const store = {
    markDeliveredBatch: vi.fn(async (marks: DeliveredMark[]): Promise<ReceiptUpdate[]> => {
      const f = failures.shift();
      if (f) throw f;
      return marks.map((m) => ({ ids: m.ids, at }));
    }),
    markReadBatch: vi.fn(async (marks: ReadMark[]): Promise<ReceiptUpdate[]> => {
      const f = failures.shift();
      if (f) throw f;
      return marks.map((m) => ({ ids: [m.upTo], at }));
    }),
  };
  return store;
}

describe('ReceiptWriter', () => {
  it('sends the receipts of one turn of the event loop as one batch per kind, answering each its own', async () => {
    const store = fakeStore();
    const w = new ReceiptWriter(store);
    const out = await Promise.all([w.markDelivered('c1', 'a', [1n]), w.markDelivered('c2', 'b', [2n, 3n]), w.markRead('c1', 'a', 'x', 7n), w.markRead('c3', 'c', 'y', 9n)]);
    expect(store.markDeliveredBatch).toHaveBeenCalledTimes(1);
    expect(store.markReadBatch).toHaveBeenCalledTimes(1);
    expect(store.markDeliveredBatch.mock.calls[0]![0]).toHaveLength(2);
    expect(out.map((u) => u.ids)).toEqual([[1n], [2n, 3n], [7n], [9n]]);
  });

  it('batches what arrives while a batch runs into the next one, and no more than the maximum at once', async () => {
    const store = fakeStore();
    const w = new ReceiptWriter(store, 2);
    const first = w.markDelivered('c', 'a', [1n]);
    await new Promise((r) => setImmediate(r));
    // The first batch is running: these three wait, then go as 2 + 1.
    const rest = [w.markDelivered('c', 'a', [2n]), w.markDelivered('c', 'a', [3n]), w.markDelivered('c', 'a', [4n])];
    await Promise.all([first, ...rest]);
    expect(store.markDeliveredBatch.mock.calls.map((c) => c[0].length)).toEqual([1, 2, 1]);
  });

  it('tries a batch again after a deadlock and fails every request of a batch the database refused', async () => {
    const deadlock = Object.assign(new Error('deadlock detected'), { code: '40P01' });
    const store = fakeStore({ fail: [deadlock] });
    const w = new ReceiptWriter(store);
    expect((await w.markRead('c', 'a', 'x', 5n)).ids).toEqual([5n]);
    expect(store.markReadBatch).toHaveBeenCalledTimes(2);

    const refused = Object.assign(new Error('boom'), { code: '22003' });
    const failing = new ReceiptWriter(fakeStore({ fail: [refused] }));
    const results = await Promise.allSettled([failing.markDelivered('c', 'a', [1n]), failing.markDelivered('c', 'b', [2n])]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    // The next batch is not held up by the failed one.
    expect((await failing.markDelivered('c', 'a', [3n])).ids).toEqual([3n]);
  });
});
