import type { Bus } from '../infra/bus/bus.ts';
import { encodeDelivery } from '../infra/bus/bus.ts';
import type { Logger } from '../infra/logger.ts';
import { encodeEvent, type EncodedEvent } from '../protocol/frames.ts';
import type { EventMap, EventType } from '../protocol/index.ts';

export interface PublishOptions {
  /** A connection that must not get the event (the one that caused it). */
  skip?: string;
  /** Publish time (ms) for the delivery-latency metric; only chat messages are timed. */
  sentAt?: number;
}

/**
 * Sends typed events to every connection of a user, on whichever node it is. Serialise
 * once with `encodeEvent` and publish the same frame to several users.
 */
export class Events {
  private lastWarn = 0;
  private suppressed = 0;

  constructor(
    private readonly bus: Bus,
    private readonly log: Logger,
  ) {}

  toUser<E extends EventType>(user: string, ev: E, data: EventMap[E], opts?: PublishOptions): void {
    this.frame(user, encodeEvent(ev, data), opts);
  }

  toUsers<E extends EventType>(users: Iterable<string>, ev: E, data: EventMap[E], opts?: PublishOptions): void {
    const frame = encodeEvent(ev, data);
    for (const user of users) this.frame(user, frame, opts);
  }

  frame(user: string, frame: EncodedEvent, opts?: PublishOptions): void {
    this.bus.publish(user, encodeDelivery(frame, opts?.skip ?? '', opts?.sentAt ?? 0)).catch((err: unknown) => this.failed(err));
  }

  /** An outage fails every publish: log the first and then a count every few seconds. */
  private failed(err: unknown): void {
    const now = Date.now();
    if (now - this.lastWarn < 5000) {
      this.suppressed++;
      return;
    }
    this.log.warn({ err: (err as Error)?.message ?? String(err), suppressed: this.suppressed }, 'event not published');
    this.lastWarn = now;
    this.suppressed = 0;
  }
}
