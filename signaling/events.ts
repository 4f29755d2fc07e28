import type { Bus } from '../infra/bus/bus.ts';
import { encodeControl, encodeDelivery, encodeGroupDelivery } from '../infra/bus/bus.ts';
import { LogThrottle, type Logger } from '../infra/logger.ts';
import { encodeEvent, type EncodedEvent } from '../protocol/frames.ts';
import type { EventMap, EventType } from '../protocol/index.ts';
import type { Metrics } from './metrics.ts';

export interface PublishOptions {
  /** A connection that must not get the event (the one that caused it). */
  skip?: string;
  /** Publish time (ms) for the delivery-latency metric; only chat messages are timed. */
  sentAt?: number;
}

export interface GroupPublishOptions extends PublishOptions {
  /** A member none of whose connections gets the event (typing: the typist). */
  except?: string;
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
  private readonly missedGroups = new Set<string>();
  private retryTimer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    private readonly bus: Bus,
    private readonly log: Logger,
    private readonly metrics?: Metrics,
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
    this.metrics?.busPublishes.inc({ channel: 'user' });
    this.bus.publish(user, encodeDelivery(frame, opts?.skip ?? '', opts?.sentAt ?? 0)).catch((err: unknown) => this.failed(user, err));
  }

  /** One publish to the group's channel; every node holding members writes it to their connections. */
  toGroup<E extends EventType>(group: string, ev: E, data: EventMap[E], opts?: GroupPublishOptions): void {
    this.groupFrame(group, encodeEvent(ev, data), opts);
  }

  groupFrame(group: string, frame: EncodedEvent, opts?: GroupPublishOptions): void {
    this.metrics?.busPublishes.inc({ channel: 'group' });
    this.bus.publishGroup(group, encodeGroupDelivery(frame, opts?.skip ?? '', opts?.sentAt ?? 0, opts?.except ?? '')).catch((err: unknown) => this.failedGroup(group, err));
  }

  /**
   * A message for the nodes on a group's or a user's channel (subscriptions to change).
   * Awaited by membership changes, so it is in Redis before the change is answered: on the
   * group channel it then precedes every later message of that group.
   */
  async groupControl(group: string, body: string): Promise<void> {
    this.metrics?.busPublishes.inc({ channel: 'group' });
    await this.bus.publishGroup(group, encodeControl(body)).catch((err: unknown) => this.failedGroup(group, err));
  }

  async userControl(user: string, body: string): Promise<void> {
    this.metrics?.busPublishes.inc({ channel: 'user' });
    await this.bus.publish(user, encodeControl(body)).catch((err: unknown) => this.failed(user, err));
  }

  private failedGroup(group: string, err: unknown): void {
    if (this.missedGroups.size < MAX_MISSED) this.missedGroups.add(group);
    this.failed(null, err);
  }

  /** An outage fails every publish: log the first and then a count every few seconds. */
  private failed(user: string | null, err: unknown): void {
    if (user !== null && this.missed.size < MAX_MISSED) this.missed.add(user);
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
      // A group whose event was lost: one resync on its channel reaches every member's devices.
      const groups = [...this.missedGroups];
      const groupResults = await Promise.allSettled(groups.map((g) => this.bus.publishGroup(g, encodeGroupDelivery(encodeEvent('session.resync', { reason: 'publish-failed' })))));
      groupResults.forEach((r, i) => r.status === 'fulfilled' && this.missedGroups.delete(groups[i]!));
      if (users.length + groups.length > 0 && this.missed.size + this.missedGroups.size === 0) {
        this.log.info({ users: users.length, groups: groups.length }, 'publishing works again; users told to resync');
      }
    } catch {
      // Still down.
    } finally {
      this.retryTimer = null;
      if (this.missed.size + this.missedGroups.size > 0) this.scheduleResync();
    }
  }
}
