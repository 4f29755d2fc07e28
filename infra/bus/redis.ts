import type { RedisClient, RedisKeys } from '../redis/connect.ts';
import type { Bus } from './bus.ts';

/**
 * Per-user and per-group sharded pub/sub channels (SPUBLISH/SSUBSCRIBE, Redis 7). When the subscriber
 * connection comes back after a loss, the node's channels are subscribed again (ioredis
 * does it too; doing it here as well means the recover handler runs only once they are all
 * in place, whichever client or topology) and the recover handler is called.
 */
export class RedisBus implements Bus {
  private handler: (user: string, payload: string) => void = () => undefined;
  private readonly recovers: (() => void)[] = [];
  private readonly channelPrefix: string;
  private readonly groupPrefix: string;
  private groupHandler: (group: string, payload: string) => void = () => undefined;
  private readonly users = new Set<string>();
  private readonly groups = new Set<string>();
  private lost = false;
  private closing = false;

  constructor(
    private readonly cmd: RedisClient,
    private readonly sub: RedisClient,
    private readonly keys: RedisKeys,
  ) {
    const sample = keys.userChannel('X');
    this.channelPrefix = sample.slice(0, sample.indexOf('X'));
    const groupSample = keys.groupChannel('X');
    this.groupPrefix = groupSample.slice(0, groupSample.indexOf('X'));
    sub.on('smessage', (channel: string, message: string) => {
      // Channel is `<prefix>{u:<address>}:ev` or `<prefix>{g:<group>}:ev`; others on this connection are not ours.
      if (channel.startsWith(this.channelPrefix)) this.handler(channel.slice(this.channelPrefix.length, channel.length - 4), message);
      else if (channel.startsWith(this.groupPrefix)) this.groupHandler(channel.slice(this.groupPrefix.length, channel.length - 4), message);
    });
    const markLost = () => {
      if (!this.closing) this.lost = true;
    };
    sub.on('close', markLost);
    sub.on('end', markLost);
    sub.on('ready', () => {
      if (!this.lost || this.closing) return;
      this.lost = false;
      void this.resubscribe();
    });
  }

  onDeliver(handler: (user: string, payload: string) => void): void {
    this.handler = handler;
  }
  onRecover(handler: () => void): void {
    this.recovers.push(handler);
  }
  async subscribe(user: string): Promise<void> {
    this.users.add(user);
    await this.sub.ssubscribe(this.keys.userChannel(user));
  }
  async unsubscribe(user: string): Promise<void> {
    this.users.delete(user);
    await this.sub.sunsubscribe(this.keys.userChannel(user));
  }
  async publish(user: string, payload: string): Promise<void> {
    await this.cmd.spublish(this.keys.userChannel(user), payload);
  }
  onGroupDeliver(handler: (group: string, payload: string) => void): void {
    this.groupHandler = handler;
  }
  async subscribeGroup(group: string): Promise<void> {
    this.groups.add(group);
    await this.sub.ssubscribe(this.keys.groupChannel(group));
  }
  async unsubscribeGroup(group: string): Promise<void> {
    this.groups.delete(group);
    await this.sub.sunsubscribe(this.keys.groupChannel(group));
  }
  async publishGroup(group: string, payload: string): Promise<void> {
    await this.cmd.spublish(this.keys.groupChannel(group), payload);
  }
  async close(): Promise<void> {
    this.closing = true;
    this.sub.disconnect();
  }

  private async resubscribe(): Promise<void> {
    try {
      const channels = [...[...this.users].map((u) => this.keys.userChannel(u)), ...[...this.groups].map((g) => this.keys.groupChannel(g))];
      // In slices: one command per channel (sharded channels may live on different shards).
      for (let i = 0; i < channels.length; i += 1000) await Promise.all(channels.slice(i, i + 1000).map((c) => this.sub.ssubscribe(c)));
    } catch {
      // Lost again before it finished: the next `ready` starts over.
      this.lost = true;
      return;
    }
    for (const recover of this.recovers) recover();
  }
}
