import { Redis } from 'ioredis';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { REDIS_URL, clearPrefix, testPrefix } from '../../test/helpers/redis.ts';
import { coalesceWrites } from './connect.ts';

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
