import { describe, expect, it } from 'vitest';
import type { InsertOutcome, MessageStore, NewMessage } from '../../db/messages.ts';
import { createMetrics } from '../metrics.ts';
import { GroupCommitWriter } from './writer.ts';

// Group commit against a store the test steps by hand (in process, no database): what goes
// in which batch, how many are outstanding, and when each caller's promise settles.
/** A store whose commits finish when the test says so; it records each batch it was sent. */
function manualStore() {
  const commits: { batch: NewMessage[]; finish(): void; fail(err: Error): void }[] = [];
  const store = {
    insertBatch: (batch: NewMessage[]) =>
      new Promise<InsertOutcome[]>((resolve, reject) => {
        commits.push({
          batch,
          finish: () => resolve(batch.map((m) => ({ ok: true, id: BigInt(m.clientId.slice(1)), createdAt: new Date(0), duplicate: false, withheld: false }))),
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
    expect(await Promise.all(results.slice(0, 3))).toEqual([0n, 1n, 2n].map((id) => ({ ok: true, id, createdAt: new Date(0), duplicate: false, withheld: false })));
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

  it('isolates the row a refused batch failed on: only its sender is refused, the rest commit, and it goes on', async () => {
    const { store, commits } = manualStore();
    const metrics = createMetrics();
    const writer = new GroupCommitWriter(store, metrics, 2, 2);
    const results = Array.from({ length: 4 }, (_, i) => writer.submit(message(i)));
    await turn();
    // Batch [0, 1] is refused: the writer tries each row alone, in order.
    commits[0]!.fail(new Error('invalid byte sequence'));
    await turn();
    expect(commits[2]!.batch.map((m) => m.clientId)).toEqual(['c0']);
    commits[2]!.fail(new Error('invalid byte sequence'));
    await expect(results[0]).rejects.toMatchObject({ code: 'MESSAGE_REJECTED' });
    await turn();
    expect(commits[3]!.batch.map((m) => m.clientId)).toEqual(['c1']);
    commits[3]!.finish();
    expect((await results[1]!).ok).toBe(true);
    expect(await settled(results[2]!)).toBe(false);
    commits[1]!.finish();
    expect((await results[3]!).ok).toBe(true);
    await writer.flushed();
    expect(writer.pending).toBe(0);
    // Only the batch that committed whole is timed.
    expect((await histogram(metrics.commitSeconds)).count).toBe(1);
    expect((await histogram(metrics.commitBatch)).count).toBe(2);
    const later = writer.submit(message(9));
    await turn();
    commits[4]!.finish();
    expect((await later).ok).toBe(true);
    await writer.flushed();
  });
});

describe('GroupCommitWriter flushing', () => {
  it('flushed() called while the last batches are outstanding waits for all of them', async () => {
    const { store, commits } = manualStore();
    const writer = new GroupCommitWriter(store, createMetrics(), 2, 2);
    const results = Array.from({ length: 4 }, (_, i) => writer.submit(message(i)));
    await turn();
    expect(commits).toHaveLength(2);
    // Nothing queued, two commits running.
    const flushed = writer.flushed();
    expect(await settled(flushed)).toBe(false);
    commits[0]!.finish();
    await Promise.all(results.slice(0, 2));
    expect(await settled(flushed)).toBe(false);
    expect(await settled(writer.flushed())).toBe(false);
    commits[1]!.finish();
    await Promise.all(results);
    expect(await settled(flushed)).toBe(true);
  });
});
