import { CLOSE } from '../protocol/errors.ts';
import type { Bus } from '../infra/bus/bus.ts';
import { controlBody, decodeDelivery } from '../infra/bus/bus.ts';
import type { Connection } from './ws/connection.ts';
import type { Metrics } from './metrics.ts';
import type { Logger } from '../infra/logger.ts';

/**
 * The connections this node holds, by user. Subscribes the node to a user's bus channel
 * while it holds at least one of that user's connections.
 */
export class Connections {
  private readonly byUser = new Map<string, Set<Connection>>();
  private count = 0;
  /** Handlers of node-to-node notes (`encodeControl`); each ignores bodies that are not its own. */
  private readonly controls: ((user: string, body: string) => void)[] = [];

  constructor(
    private readonly bus: Bus,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    private readonly maxBufferedBytes: number,
  ) {
    bus.onDeliver((user, payload) => this.deliver(user, payload));
    bus.onRecover(() => this.resyncAll());
  }

  /**
   * The bus connection was lost and is back: events for these connections may have been
   * published meanwhile, so every one of them is told to sync (no reconnect needed).
   */
  private resyncAll(): void {
    this.log.info({ connections: this.count }, 'bus subscriptions restored; connections told to resync');
    for (const conn of this.all()) if (!conn.closed) conn.event('session.resync', { reason: 'bus-reconnected' });
  }

  /** Node-to-node notes published on the channel of a user this node holds (`encodeControl`). */
  onControl(handler: (user: string, body: string) => void): void {
    this.controls.push(handler);
  }

  get size(): number {
    return this.count;
  }

  async add(conn: Connection): Promise<void> {
    let set = this.byUser.get(conn.address);
    const first = !set;
    if (!set) this.byUser.set(conn.address, (set = new Set()));
    set.add(conn);
    this.count++;
    this.metrics.connections.set(this.count);
    // Subscribing before the client hears `hello` means nothing published after its
    // sync request can be missed.
    if (first) await this.bus.subscribe(conn.address);
  }

  /** `keepSubscription` is used while draining: the process is about to go anyway. */
  async remove(conn: Connection, keepSubscription = false): Promise<void> {
    const set = this.byUser.get(conn.address);
    if (!set || !set.delete(conn)) return;
    this.count--;
    this.metrics.connections.set(this.count);
    if (set.size === 0) {
      this.byUser.delete(conn.address);
      if (!keepSubscription) await this.bus.unsubscribe(conn.address).catch((err: unknown) => this.log.warn({ err }, 'unsubscribe failed'));
    }
  }

  forEach(fn: (conn: Connection) => void): void {
    for (const set of this.byUser.values()) for (const c of set) fn(c);
  }

  all(): Connection[] {
    const out: Connection[] = [];
    this.forEach((c) => out.push(c));
    return out;
  }

  local(user: string): ReadonlySet<Connection> | undefined {
    return this.byUser.get(user);
  }

  private deliver(user: string, payload: string): void {
    const body = controlBody(payload);
    if (body !== null) {
      for (const handle of this.controls) handle(user, body);
      return;
    }
    const { skip, sentAt, frame } = decodeDelivery(payload);
    this.write(user, frame, skip, sentAt);
  }

  /** Writes a frame to this node's connections of `user` (except `skip`). */
  write(user: string, frame: string, skip: string, sentAt: number): void {
    const set = this.byUser.get(user);
    if (!set) return;
    for (const conn of set) {
      if (conn.id === skip || conn.closed) continue;
      if (conn.ws.bufferedAmount > this.maxBufferedBytes) {
        // A client that does not read must not make the node buffer without bound; it
        // reconnects and syncs what it missed.
        conn.close(CLOSE.SLOW_CONSUMER, 'slow consumer');
        continue;
      }
      conn.sendRaw(frame);
      if (sentAt > 0) {
        this.metrics.messagesOut.inc();
        this.metrics.deliveryLatency.observe((Date.now() - sentAt) / 1000);
      }
    }
  }
}
