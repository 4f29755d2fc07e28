import type { InsertOutcome, MessageStore, NewMessage } from '../../db/messages.ts';
import type { Metrics } from '../metrics.ts';

interface Pending {
  msg: NewMessage;
  resolve: (o: InsertOutcome) => void;
  reject: (e: unknown) => void;
}

/**
 * Group commit: messages that arrive while a commit is running wait and go together in
 * the next transaction. One commit at a time keeps ids in arrival order; a caller's
 * promise settles only after its row is durable.
 */
export class GroupCommitWriter {
  private queue: Pending[] = [];
  private running = false;
  private idle: (() => void)[] = [];

  constructor(
    private readonly store: MessageStore,
    private readonly metrics: Metrics,
    private readonly maxBatch = 500,
  ) {}

  submit(msg: NewMessage): Promise<InsertOutcome> {
    return new Promise((resolve, reject) => {
      this.queue.push({ msg, resolve, reject });
      if (!this.running) {
        this.running = true;
        // Let the frames already read in this turn of the event loop join the batch.
        setImmediate(() => void this.run());
      }
    });
  }

  /** Resolves when everything submitted so far is committed (or failed). */
  flushed(): Promise<void> {
    if (!this.running && this.queue.length === 0) return Promise.resolve();
    return new Promise((r) => this.idle.push(r));
  }

  private async run(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.length <= this.maxBatch ? this.queue : this.queue.slice(0, this.maxBatch);
      this.queue = this.queue.length <= this.maxBatch ? [] : this.queue.slice(this.maxBatch);
      this.metrics.commitBatch.observe(batch.length);
      const endTimer = this.metrics.commitSeconds.startTimer();
      try {
        const outcomes = await this.store.insertBatch(batch.map((p) => p.msg));
        endTimer();
        batch.forEach((p, i) => p.resolve(outcomes[i]!));
      } catch (err) {
        for (const p of batch) p.reject(err);
      }
    }
    this.running = false;
    for (const r of this.idle.splice(0)) r();
  }
}
