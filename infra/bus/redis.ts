import type { RedisClient, RedisKeys } from '../redis/connect.ts';
import type { Bus } from './bus.ts';

/**
 * Per-user sharded pub/sub channels (SPUBLISH/SSUBSCRIBE, Redis 7). When the subscriber
 * connection comes back after a loss, the node's channels are subscribed again (ioredis
 * does it too; doing it here as well means the recover handler runs only once they are all
 * in place, whichever client or topology) and the recover handler is called.
 */
export class RedisBus implements Bus {
  private handler: (user: string, payload: string) => void = () => undefined;
  private recover: () => void = () => undefined;
  private readonly channelPrefix: string;
  private readonly users = new Set<string>();
  private lost = false;
  private closing = false;

  constructor(
    private readonly cmd: RedisClient,
    private readonly sub: RedisClient,
    private readonly keys: RedisKeys,
  ) {
    const sample = keys.userChannel('X');
    this.channelPrefix = sample.slice(0, sample.indexOf('X'));
    sub.on('smessage', (channel: string, message: string) => {
      // Channel is `<prefix>{u:<address>}:ev`; other channels on this connection are not ours.
      if (!channel.startsWith(this.channelPrefix)) return;
      const user = channel.slice(this.channelPrefix.length, channel.length - 4);
      this.handler(user, message);
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
    this.recover = handler;
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
  async close(): Promise<void> {
    this.closing = true;
    this.sub.disconnect();
  }

  private async resubscribe(): Promise<void> {
    try {
      const channels = [...this.users].map((u) => this.keys.userChannel(u));
      // In slices: one command per channel (sharded channels may live on different shards).
      for (let i = 0; i < channels.length; i += 1000) await Promise.all(channels.slice(i, i + 1000).map((c) => this.sub.ssubscribe(c)));
    } catch {
      // Lost again before it finished: the next `ready` starts over.
      this.lost = true;
      return;
    }
    this.recover();
  }
}
