import type { Bus } from '../../infra/bus/bus.ts';
import { decodeGroupDelivery, controlBody } from '../../infra/bus/bus.ts';
import type { Logger } from '../../infra/logger.ts';
import type { Connections } from '../connections.ts';
import type { Metrics } from '../metrics.ts';

/** What the nodes tell each other about group membership (control payloads). */
export type GroupControl =
  /** On a user's channel: the user became an active member; its node subscribes. */
  | { join: string }
  /** On a user's channel: the user is no longer a member of that group. */
  | { leave: string }
  /** On a group's channel: this member is gone; nodes stop writing the group's events to it. */
  | { drop: string };

/**
 * Group delivery on this node: which of its users are active members of which groups, and a
 * subscription to each group's channel while it holds a connection of any member. A group
 * event is published once; each subscribed node writes it to its own members' connections,
 * so the cost per event is bounded by the number of nodes, not members.
 *
 * A user's groups are loaded when the node gets its first connection of that user, and kept
 * current by control payloads: `join`/`leave` on the user's channel (reaches the nodes holding
 * that user, subscribed to the group or not) and `drop` on the group's channel (ordered with
 * the group's messages, so nothing published after a removal is written to the removed
 * member). After a bus outage the memberships are loaded again.
 */
export class GroupFanout {
  /** group → this node's users that are active members of it. */
  private readonly members = new Map<string, Set<string>>();
  /** user → its groups (only users with a connection here). */
  private readonly groupsOf = new Map<string, Set<string>>();
  /** Users whose groups are being loaded; a second connection waits for the same load. */
  private readonly loading = new Map<string, Promise<void>>();

  constructor(
    private readonly deps: {
      bus: Bus;
      connections: Connections;
      /** The groups an address is an active member of (PostgreSQL). */
      activeGroupIds: (address: string) => Promise<string[]>;
      metrics: Metrics;
      log: Logger;
    },
  ) {
    deps.bus.onGroupDeliver((group, payload) => this.deliver(group, payload));
    deps.connections.onControl((user, body) => this.userControl(user, body));
    deps.bus.onRecover(() => void this.reload());
  }

  /** Groups this node is subscribed to. */
  get size(): number {
    return this.members.size;
  }

  /** Local active members of a group (for tests and metrics). */
  localMembers(group: string): ReadonlySet<string> | undefined {
    return this.members.get(group);
  }

  /** A connection of `user` opened here: subscribe to its groups before it is told hello. */
  async connected(user: string): Promise<void> {
    if (this.groupsOf.has(user)) return this.loading.get(user);
    this.groupsOf.set(user, new Set());
    const load = this.load(user).finally(() => this.loading.delete(user));
    this.loading.set(user, load);
    return load;
  }

  /** `user` just became an active member: if it is connected here, subscribe now (awaited). */
  async attachLocal(group: string, user: string): Promise<void> {
    await this.loading.get(user);
    if (this.groupsOf.has(user)) await this.attach(group, user);
  }

  /** The node's last connection of `user` closed. */
  disconnected(user: string): void {
    if (this.deps.connections.local(user)) return;
    const groups = this.groupsOf.get(user);
    if (!groups) return;
    this.groupsOf.delete(user);
    for (const g of groups) this.detach(g, user);
  }

  private async load(user: string): Promise<void> {
    const ids = await this.deps.activeGroupIds(user);
    // The user's connections may all have closed while its groups were read.
    if (!this.groupsOf.has(user)) return;
    await Promise.all(ids.map((g) => this.attach(g, user)));
  }

  private async attach(group: string, user: string): Promise<void> {
    const mine = this.groupsOf.get(user);
    if (!mine) return;
    mine.add(group);
    let set = this.members.get(group);
    if (set) {
      set.add(user);
      return;
    }
    this.members.set(group, (set = new Set([user])));
    this.deps.metrics.groupChannels.set(this.members.size);
    await this.deps.bus.subscribeGroup(group);
  }

  private detach(group: string, user: string): void {
    this.groupsOf.get(user)?.delete(group);
    const set = this.members.get(group);
    if (!set || !set.delete(user) || set.size > 0) return;
    this.members.delete(group);
    this.deps.metrics.groupChannels.set(this.members.size);
    this.deps.bus.unsubscribeGroup(group).catch((err: unknown) => this.deps.log.warn({ err: (err as Error)?.message ?? String(err) }, 'group unsubscribe failed'));
  }

  private userControl(user: string, body: string): void {
    const c = parseControl(body);
    if (!c) return;
    if ('join' in c) {
      this.attach(c.join, user).catch((err: unknown) => this.deps.log.warn({ err: (err as Error)?.message ?? String(err) }, 'group subscribe failed'));
    } else if ('leave' in c) {
      this.detach(c.leave, user);
    }
  }

  private deliver(group: string, payload: string): void {
    const body = controlBody(payload);
    if (body !== null) {
      const c = parseControl(body);
      if (c && 'drop' in c) this.detach(group, c.drop);
      return;
    }
    const set = this.members.get(group);
    if (!set) return;
    const { skip, sentAt, except, frame } = decodeGroupDelivery(payload);
    for (const user of set) if (user !== except) this.deps.connections.write(user, frame, skip, sentAt);
  }

  /** After a bus outage: control payloads may have been lost, so read every local user's groups again. */
  private async reload(): Promise<void> {
    const users = [...this.groupsOf.keys()];
    for (const user of users) {
      try {
        const now = new Set(await this.deps.activeGroupIds(user));
        const had = this.groupsOf.get(user);
        if (!had) continue;
        for (const g of [...had]) if (!now.has(g)) this.detach(g, user);
        for (const g of now) if (!had.has(g)) await this.attach(g, user);
      } catch (err) {
        this.deps.log.warn({ err: (err as Error)?.message ?? String(err) }, 'group memberships not reloaded');
        return;
      }
    }
  }
}

function parseControl(body: string): GroupControl | null {
  try {
    const c = JSON.parse(body) as unknown;
    if (typeof c !== 'object' || c === null) return null;
    const v = c as Record<string, unknown>;
    if (typeof v.join === 'string') return { join: v.join };
    if (typeof v.leave === 'string') return { leave: v.leave };
    if (typeof v.drop === 'string') return { drop: v.drop };
    return null;
  } catch {
    return null;
  }
}

export function encodeGroupControl(c: GroupControl): string {
  return JSON.stringify(c);
}
