import { Redis } from 'ioredis';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { REDIS_URL, clearPrefix, testPrefix } from '../../testkit/redis.ts';
import { coalesceWrites, createRedis } from './connect.ts';
import type { Config } from '../../config/config.ts';

const prefix = testPrefix('coalesce');
const clients: Redis[] = [];
afterAll(async () => {
  for (const c of clients) c.disconnect();
  await clearPrefix(prefix);
});

describe('coalesceWrites', () => {
  it('sends the commands of one tick in one write, answers each in order, and survives a reconnect', async () => {
    const r = new Redis(REDIS_URL, { enableAutoPipelining: false });
    clients.push(r);
    coalesceWrites(r);
    await r.ping();
    const socket = r.stream as unknown as { _writev: (...a: unknown[]) => unknown; write: (...a: unknown[]) => unknown };
    const writev = vi.spyOn(socket, '_writev');
    const write = vi.spyOn(socket, 'write');
    const replies = await Promise.all(Array.from({ length: 100 }, (_, i) => r.incr(`${prefix}n`).then((n) => [i, n])));
    expect(replies).toEqual(Array.from({ length: 100 }, (_, i) => [i, i + 1]));
    expect(write).toHaveBeenCalledTimes(100);
    expect(writev).toHaveBeenCalledTimes(1);

    // A new connection gets the same treatment.
    r.disconnect(true);
    await new Promise<void>((resolve) => r.once('ready', () => resolve()));
    expect(await Promise.all([r.incr(`${prefix}n`), r.incr(`${prefix}n`)])).toEqual([101, 102]);
  });
});

describe('subscriber connections', () => {
  it('keep a subscription made the moment the socket connects, before ioredis would call it ready', async () => {
    const cfg: Config['redis'] = { url: REDIS_URL, clusterNodes: [], keyPrefix: prefix, password: null, tls: false };
    const sub = createRedis(cfg, 'subscriber') as Redis;
    const pub = new Redis(REDIS_URL);
    clients.push(sub, pub);
    const errors: Error[] = [];
    sub.on('error', (err: Error) => errors.push(err));
    const channel = `${prefix}{race}:ev`;
    const subscribed = new Promise<void>((resolve, reject) => sub.once('connect', () => sub.ssubscribe(channel).then(() => resolve(), reject)));
    const got = new Promise<string>((resolve) => sub.on('smessage', (_c: string, m: string) => resolve(m)));
    await subscribed;
    await pub.spublish(channel, 'hello');
    expect(await got).toBe('hello');
    expect(errors).toEqual([]);
  });
});
