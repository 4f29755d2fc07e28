import type { InsertOutcome, MessageStore, NewMessage } from '../../db/messages.ts';
import type { Metrics } from '../metrics.ts';

interface Pending {
  msg: NewMessage;
  resolve: (o: InsertOutcome) => void;
  reject: (e: unknown) => void;
}

/**
 * Group commit: messages that arrive while commits are running wait and go together in a
 * later transaction. Up to `concurrency` batches are outstanding so the database works on
 * the next batch while this process handles the results of the previous one. The store
 * must run its statements one after another in the order they were sent (one connection:
 * `Database.writer`), which keeps ids in arrival order. A caller's promise settles only
 * after its row is durable.
 */
export class GroupCommitWriter {
  private queue: Pending[] = [];
  private running = 0;
  private inFlight = 0;
  private scheduled = false;
  private idle: (() => void)[] = [];

  constructor(
    private readonly store: MessageStore,
    private readonly metrics: Metrics,
    private readonly maxBatch = 500,
    private readonly concurrency = 2,
  ) {}

  submit(msg: NewMessage): Promise<InsertOutcome> {
    return new Promise((resolve, reject) => {
      this.queue.push({ msg, resolve, reject });
      this.schedule();
    });
  }

  /** Messages waiting for a commit or in one. */
  get pending(): number {
    return this.queue.length + this.inFlight;
  }

  /** Resolves when everything submitted so far is committed (or failed). */
  flushed(): Promise<void> {
    if (this.running === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((r) => this.idle.push(r));
  }

  private schedule(): void {
    if (this.scheduled || this.running >= this.concurrency) return;
    this.scheduled = true;
    // Let the frames already read in this turn of the event loop join the batch.
    setImmediate(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    while (this.running < this.concurrency && this.queue.length > 0) {
      const batch = this.queue.length <= this.maxBatch ? this.queue : this.queue.slice(0, this.maxBatch);
      this.queue = this.queue.length <= this.maxBatch ? [] : this.queue.slice(this.maxBatch);
      void this.commit(batch);
    }
  }

  private async commit(batch: Pending[]): Promise<void> {
    this.running++;
    this.inFlight += batch.length;
    this.metrics.commitBatch.observe(batch.length);
    const endTimer = this.metrics.commitSeconds.startTimer();
    try {
      const outcomes = await this.store.insertBatch(batch.map((p) => p.msg));
      endTimer();
      batch.forEach((p, i) => p.resolve(outcomes[i]!));
    } catch (err) {
      for (const p of batch) p.reject(err);
    } finally {
      this.running--;
      this.inFlight -= batch.length;
    }
    if (this.queue.length > 0) this.schedule();
    else if (this.running === 0) for (const r of this.idle.splice(0)) r();
  }
}
