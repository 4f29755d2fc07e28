import type { Bus } from '../infra/bus/bus.ts';
import { encodeDelivery } from '../infra/bus/bus.ts';
import { LogThrottle, type Logger } from '../infra/logger.ts';
import { encodeEvent, type EncodedEvent } from '../protocol/frames.ts';
import type { EventMap, EventType } from '../protocol/index.ts';

export interface PublishOptions {
  /** A connection that must not get the event (the one that caused it). */
  skip?: string;
  /** Publish time (ms) for the delivery-latency metric; only chat messages are timed. */
  sentAt?: number;
}

/** Users remembered for a resync at most; beyond it, their own node's resync on reconnect covers them. */
const MAX_MISSED = 100_000;
const RETRY_MS = 250;

/**
 * Sends typed events to every connection of a user, on whichever node it is. Serialise
 * once with `encodeEvent` and publish the same frame to several users.
 *
 * A publish that fails (Redis unreachable) is not retried as such: the user is remembered
 * and, as soon as publishing works again, gets `session.resync` on every connection, which
 * makes clients fetch what they missed with `chat.sync`.
 */
export class Events {
  private readonly warnings = new LogThrottle();
  private readonly missed = new Set<string>();
  private retryTimer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    private readonly bus: Bus,
    private readonly log: Logger,
  ) {}

  /** Users whose events could not be published and who have not been told to resync yet. */
  get missedUsers(): number {
    return this.missed.size;
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  toUser<E extends EventType>(user: string, ev: E, data: EventMap[E], opts?: PublishOptions): void {
    this.frame(user, encodeEvent(ev, data), opts);
  }

  toUsers<E extends EventType>(users: Iterable<string>, ev: E, data: EventMap[E], opts?: PublishOptions): void {
    const frame = encodeEvent(ev, data);
    for (const user of users) this.frame(user, frame, opts);
  }

  frame(user: string, frame: EncodedEvent, opts?: PublishOptions): void {
    this.bus.publish(user, encodeDelivery(frame, opts?.skip ?? '', opts?.sentAt ?? 0)).catch((err: unknown) => this.failed(user, err));
  }

  /** An outage fails every publish: log the first and then a count every few seconds. */
  private failed(user: string, err: unknown): void {
    if (this.missed.size < MAX_MISSED) this.missed.add(user);
    this.scheduleResync();
    if (!this.warnings.due()) return;
    this.log.warn({ err: (err as Error)?.message ?? String(err), suppressed: this.warnings.takeHeld() }, 'event not published; its users will be told to resync');
  }

  private scheduleResync(): void {
    if (this.retryTimer || this.stopped) return;
    this.retryTimer = setTimeout(() => void this.resync(), RETRY_MS);
    this.retryTimer.unref();
  }

  /** One probe publish; once it goes through, every other missed user is told too. */
  private async resync(): Promise<void> {
    const resync = encodeDelivery(encodeEvent('session.resync', { reason: 'publish-failed' }));
    const users = [...this.missed];
    try {
      const first = users[0];
      if (first !== undefined) {
        await this.bus.publish(first, resync);
        this.missed.delete(first);
      }
      const rest = users.slice(1);
      const results = await Promise.allSettled(rest.map((u) => this.bus.publish(u, resync)));
      results.forEach((r, i) => r.status === 'fulfilled' && this.missed.delete(rest[i]!));
      if (users.length > 0 && this.missed.size === 0) this.log.info({ users: users.length }, 'publishing works again; users told to resync');
    } catch {
      // Still down.
    } finally {
      this.retryTimer = null;
      if (this.missed.size > 0) this.scheduleResync();
    }
  }
}
