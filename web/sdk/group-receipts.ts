/**
 * "Read by N of M" for my own group messages. The server sends a `group.receipt` (a member's
 * cursor moved) only to the senders it covers; counts per message come from `group.receipts`.
 * Asking once per event would cost a request per member per message, so wanted ids are
 * collected for a short while and asked for together (at most 100 per request).
 */
import type { GroupReceiptCount, RequestInput, ResultMap } from '../../protocol/index.ts';

export interface ReceiptSummary {
  /** Members who could receive it (the sender excepted). */
  of: number;
  delivered: number;
  read: number;
}

type Ask = (payload: RequestInput<'group.receipts'>) => Promise<ResultMap['group.receipts']>;

const BATCH_DELAY_MS = 60;
const MAX_IDS = 100;

export class GroupReceiptCounter {
  private readonly wanted = new Map<string, Set<string>>();
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly ask: Ask,
    private readonly apply: (group: string, count: GroupReceiptCount) => void,
    private readonly delayMs = BATCH_DELAY_MS,
  ) {}

  /** Counts for these messages will be asked for soon. */
  want(group: string, ids: Iterable<string>): void {
    let set = this.wanted.get(group);
    if (!set) this.wanted.set(group, (set = new Set()));
    for (const id of ids) set.add(id);
    if (set.size === 0) this.wanted.delete(group);
    else this.timer ??= setTimeout(() => void this.flush(), this.delayMs);
  }

  /** Who delivered and read one message (asked at once, not cached). */
  async details(group: string, id: string): Promise<GroupReceiptCount | null> {
    const r = await this.ask({ group, ids: [id], details: true });
    const count = r.receipts.find((c) => c.id === id) ?? null;
    if (count) this.apply(group, count);
    return count;
  }

  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.wanted.clear();
  }

  private async flush(): Promise<void> {
    this.timer = null;
    const batch = [...this.wanted];
    this.wanted.clear();
    await Promise.all(
      batch.map(async ([group, set]) => {
        // Newest first: those are the ones on screen.
        const ids = [...set].sort((a, b) => (BigInt(b) > BigInt(a) ? 1 : BigInt(b) < BigInt(a) ? -1 : 0));
        for (let i = 0; i < ids.length; i += MAX_IDS) {
          try {
            const r = await this.ask({ group, ids: ids.slice(i, i + MAX_IDS) });
            for (const c of r.receipts) this.apply(group, c);
          } catch {
            // Counts are asked for again with the next receipt or history load.
          }
        }
      }),
    );
  }
}

export function summaryOf(c: GroupReceiptCount): ReceiptSummary {
  return { of: c.of, delivered: c.delivered, read: c.read };
}
