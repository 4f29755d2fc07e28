import type { RedisClient, RedisKeys } from '../redis/connect.ts';
import type { Bus } from './bus.ts';

/** Per-user sharded pub/sub channels (SPUBLISH/SSUBSCRIBE, Redis 7). */
export class RedisBus implements Bus {
  private handler: (user: string, payload: string) => void = () => undefined;
  private readonly channelPrefix: string;

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
  }

  onDeliver(handler: (user: string, payload: string) => void): void {
    this.handler = handler;
  }
  async subscribe(user: string): Promise<void> {
    await this.sub.ssubscribe(this.keys.userChannel(user));
  }
  async unsubscribe(user: string): Promise<void> {
    await this.sub.sunsubscribe(this.keys.userChannel(user));
  }
  async publish(user: string, payload: string): Promise<void> {
    await this.cmd.spublish(this.keys.userChannel(user), payload);
  }
  async close(): Promise<void> {
    this.sub.disconnect();
  }
}
