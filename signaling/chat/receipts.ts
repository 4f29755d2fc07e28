import type { DeliveredMark, MessageStore, ReadMark, ReceiptUpdate } from '../../db/messages.ts';
import { errorCodeOf } from './writer.ts';

/** What the chat service needs to record receipts. */
export type ReceiptMarks = Pick<MessageStore, 'markDelivered' | 'markRead'>;

interface Waiting<T> {
  mark: T;
  resolve: (u: ReceiptUpdate) => void;
  reject: (e: unknown) => void;
}

/** A lock-order deadlock between a read batch and a delivered batch over the same rows: try again. */
const DEADLOCK = '40P01';

/**
 * One statement per batch of receipts instead of one (or a transaction of two) per request:
 * with receipts in the mix a chat message brings a delivered and a read request, and a
 * PostgreSQL round trip each cost the node more than the message itself. Receipts that
 * arrive while a batch of their kind is running go together in the next one; one batch of
 * each kind at a time, so batches of one kind never wait on each other's row locks.
 */
class Batcher<T> {
  private queue: Waiting<T>[] = [];
  private running = false;
  private scheduled = false;

  constructor(
    private readonly run: (marks: T[]) => Promise<ReceiptUpdate[]>,
    private readonly maxBatch: number,
  ) {}

  submit(mark: T): Promise<ReceiptUpdate> {
    return new Promise((resolve, reject) => {
      this.queue.push({ mark, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.running) return;
    this.scheduled = true;
    // The frames already read in this turn of the event loop join the batch.
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    const batch = this.queue.splice(0, this.maxBatch);
    if (batch.length === 0) return;
    this.running = true;
    try {
      const updates = await this.attempt(batch.map((w) => w.mark));
      batch.forEach((w, i) => w.resolve(updates[i]!));
    } catch (err) {
      for (const w of batch) w.reject(err);
    } finally {
      this.running = false;
      if (this.queue.length > 0) this.schedule();
    }
  }

  private async attempt(marks: T[]): Promise<ReceiptUpdate[]> {
    try {
      return await this.run(marks);
    } catch (err) {
      if (errorCodeOf(err) !== DEADLOCK) throw err;
      return this.run(marks);
    }
  }
}

/** Delivered and read receipts, batched per kind (see Batcher). */
export class ReceiptWriter implements ReceiptMarks {
  private readonly delivered: Batcher<DeliveredMark>;
  private readonly read: Batcher<ReadMark>;

  constructor(store: Pick<MessageStore, 'markDeliveredBatch' | 'markReadBatch'>, maxBatch = 500) {
    this.delivered = new Batcher((m) => store.markDeliveredBatch(m), maxBatch);
    this.read = new Batcher((m) => store.markReadBatch(m), maxBatch);
  }

  markDelivered(conversation: string, recipient: string, ids: bigint[]): Promise<ReceiptUpdate> {
    return this.delivered.submit({ conversation, recipient, ids });
  }

  markRead(conversation: string, recipient: string, peer: string, upTo: bigint): Promise<ReceiptUpdate> {
    return this.read.submit({ conversation, recipient, peer, upTo });
  }
}
