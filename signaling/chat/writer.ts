import type { InsertOutcome, MessageStore, NewMessage } from '../../db/messages.ts';
import type { Logger } from '../../infra/logger.ts';
import { BlockRtcError } from '../../protocol/errors.ts';
import type { Metrics } from '../metrics.ts';

interface Pending {
  msg: NewMessage;
  resolve: (o: InsertOutcome) => void;
  reject: (e: unknown) => void;
}

/** How long a client waits before sending again while PostgreSQL is unreachable. */
export const DB_RETRY_AFTER_MS = 500;

const CONNECTIVITY_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
const CONNECTIVITY_SQLSTATES = new Set([
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, recovering)
  '53300', // too_many_connections
  '25006', // read_only_sql_transaction (a standby after failover)
]);
const CONNECTIVITY_MESSAGES = /connection terminated|connection (?:error|ended)|not queryable|timeout exceeded when trying to connect|terminating connection|the database system is (?:starting up|shutting down|in recovery mode)/i;

/**
 * True when an error says the database could not be reached or went away (restart,
 * failover, network), as opposed to a statement it refused: the same rows may well succeed
 * once it is back.
 */
export function isConnectivityError(err: unknown): boolean {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') {
      if (CONNECTIVITY_CODES.has(code) || CONNECTIVITY_SQLSTATES.has(code) || code.startsWith('08')) return true;
    }
    const message = (e as { message?: unknown }).message;
    if (typeof message === 'string' && CONNECTIVITY_MESSAGES.test(message.split('\n', 1)[0]!)) return true;
  }
  return false;
}

/** The SQLSTATE (or Node error code) of an error or of its cause; never its message or parameters. */
export function errorCodeOf(err: unknown): string {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code.length > 0) return code;
  }
  return err instanceof Error ? err.name : 'unknown';
}

/**
 * Group commit: messages that arrive while commits are running wait and go together in a
 * later transaction. Up to `concurrency` batches are outstanding so the database works on
 * the next batch while this process handles the results of the previous one. The store
 * must run its statements one after another in the order they were sent (one connection:
 * `Database.writer`), which keeps ids in arrival order. A caller's promise settles only
 * after its row is durable.
 *
 * Failures never spread beyond the rows that cause them: when the database refuses a batch
 * (anything but a connectivity error), the batch is split in halves and each half tried
 * again, down to the single row, so every good row commits and only the sender of a row
 * the database cannot take gets `MESSAGE_REJECTED`. (Rows committed by such a retry come
 * after any batch that was already outstanding.) When the database is unreachable every
 * sender of the batch gets `UNAVAILABLE` with a retry hint, and the outage is logged once,
 * with a summary when it ends.
 */
export class GroupCommitWriter {
  private queue: Pending[] = [];
  private running = 0;
  private inFlight = 0;
  private scheduled = false;
  private idle: (() => void)[] = [];
  private outage: { since: number; batches: number; messages: number } | null = null;

  constructor(
    private readonly store: MessageStore,
    private readonly metrics: Metrics,
    private readonly maxBatch = 500,
    private readonly concurrency = 2,
    private readonly log: Logger | null = null,
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

  /** True while the database is unreachable (from the first failed commit to the next good one). */
  get unavailable(): boolean {
    return this.outage !== null;
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
      await this.attempt(batch, () => endTimer());
    } finally {
      this.running--;
      this.inFlight -= batch.length;
    }
    if (this.queue.length > 0) this.schedule();
    else if (this.running === 0) for (const r of this.idle.splice(0)) r();
  }

  /** Inserts `rows`; on a refusal, bisects until the failing rows are alone. Never throws. */
  private async attempt(rows: Pending[], committed?: () => void): Promise<void> {
    let outcomes: InsertOutcome[];
    try {
      outcomes = await this.store.insertBatch(rows.map((p) => p.msg));
    } catch (err) {
      if (isConnectivityError(err)) return this.unreachable(rows, err);
      if (rows.length > 1) {
        const half = Math.ceil(rows.length / 2);
        await this.attempt(rows.slice(0, half));
        await this.attempt(rows.slice(half));
        return;
      }
      this.log?.warn({ code: errorCodeOf(err), sender: rows[0]!.msg.sender }, 'message refused by the database');
      rows[0]!.reject(new BlockRtcError('MESSAGE_REJECTED'));
      return;
    }
    committed?.();
    this.available();
    rows.forEach((p, i) => p.resolve(outcomes[i]!));
  }

  private unreachable(rows: Pending[], err: unknown): void {
    if (!this.outage) {
      this.outage = { since: Date.now(), batches: 0, messages: 0 };
      this.log?.warn({ code: errorCodeOf(err) }, 'database unreachable: sends are answered UNAVAILABLE until it is back');
    }
    this.outage.batches++;
    this.outage.messages += rows.length;
    const refusal = new BlockRtcError('UNAVAILABLE', 'The message store is unreachable; send again with the same client id', { retryAfterMs: DB_RETRY_AFTER_MS });
    for (const p of rows) p.reject(refusal);
  }

  private available(): void {
    if (!this.outage) return;
    const { since, batches, messages } = this.outage;
    this.outage = null;
    this.log?.info({ downMs: Date.now() - since, failedBatches: batches, refusedSends: messages }, 'database reachable again');
  }
}
