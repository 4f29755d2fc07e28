import { Redis } from 'ioredis';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { REDIS_URL, clearPrefix, testPrefix } from '../testkit/redis.ts';
import { MemoryNonceStore } from './auth/nonces/memory.ts';
import { RedisNonceStore } from './auth/nonces/redis.ts';
import type { NonceStore } from './auth/nonces/store.ts';
import { controlBody, decodeGroupDelivery, encodeControl, encodeDelivery, decodeDelivery, encodeGroupDelivery, type Bus } from '../infra/bus/bus.ts';
import { MemoryBus } from '../infra/bus/memory.ts';
import { RedisBus } from '../infra/bus/redis.ts';
import { MemoryPresenceStore } from './presence/memory.ts';
import { RedisPresenceStore } from './presence/redis.ts';
import type { PresenceStore } from './presence/store.ts';
import type { RateLimiter } from './ratelimit/limiter.ts';
import { MemoryRateLimiter } from './ratelimit/memory.ts';
import { RedisRateLimiter } from './ratelimit/redis.ts';
import { redisKeys } from '../infra/redis/connect.ts';

const prefix = testPrefix('unit');
const keys = redisKeys(prefix);
const clients: Redis[] = [];
const redis = () => {
  const r = new Redis(REDIS_URL);
  clients.push(r);
  return r;
};
afterAll(async () => {
  for (const c of clients) c.disconnect();
  await clearPrefix(prefix);
});

interface Impl {
  bus: () => Bus;
  presence: (node: string) => PresenceStore;
  nonces: () => NonceStore;
  limiter: () => RateLimiter;
}
const memoryPresence = new MemoryPresenceStore();
const impls: Record<'memory' | 'redis', Impl> = {
  memory: { bus: () => new MemoryBus(), presence: () => memoryPresence, nonces: () => new MemoryNonceStore(), limiter: () => new MemoryRateLimiter() },
  redis: {
    bus: () => new RedisBus(redis(), redis(), keys),
    presence: (node) => new RedisPresenceStore(redis(), keys, node, 1000),
    nonces: () => new RedisNonceStore(redis(), keys),
    limiter: () => new RedisRateLimiter(redis(), keys),
  },
};

describe('delivery payloads', () => {
  it('round-trip the skipped connection, the timestamp and the frame', () => {
    const frame = JSON.stringify({ ev: 'x', data: { text: 'a\nb c' } });
    expect(decodeDelivery(encodeDelivery(frame, 'n1.5', 42))).toEqual({ skip: 'n1.5', sentAt: 42, frame });
    expect(decodeDelivery(encodeDelivery(frame))).toEqual({ skip: '', sentAt: 0, frame });
  });
  it('round-trip group deliveries (with the excepted member) and tell control payloads apart', () => {
    const frame = JSON.stringify({ ev: 'x', data: { text: 'a\nb c' } });
    expect(decodeGroupDelivery(encodeGroupDelivery(frame, 'n1.5', 42, '0xA'))).toEqual({ skip: 'n1.5', sentAt: 42, except: '0xA', frame });
    expect(decodeGroupDelivery(encodeGroupDelivery(frame))).toEqual({ skip: '', sentAt: 0, except: '', frame });
    expect(controlBody(encodeControl('{"join":"g"}'))).toBe('{"join":"g"}');
    expect(controlBody(encodeDelivery(frame))).toBeNull();
    expect(controlBody(encodeDelivery(frame, 'n1.5'))).toBeNull();
  });
});

describe.each(['memory', 'redis'] as const)('%s backends', (kind) => {
  const impl = impls[kind];

  it('bus delivers to subscribed users only, until unsubscribed', async () => {
    const bus = impl.bus();
    const got: [string, string][] = [];
    bus.onDeliver((u, p) => got.push([u, p]));
    // 0xM carries markers: what was published before a marker has arrived once the marker has.
    const marked = (m: string) => expect.poll(() => got.some(([u, p]) => u === '0xM' && p === m), { timeout: 5_000, interval: 10 }).toBe(true);
    await bus.subscribe('0xA');
    await bus.subscribe('0xM');
    await bus.publish('0xA', 'one');
    await bus.publish('0xB', 'not mine');
    await bus.publish('0xM', 'm1');
    await marked('m1');
    await bus.unsubscribe('0xA');
    await bus.publish('0xA', 'after');
    await bus.publish('0xM', 'm2');
    await marked('m2');
    expect(got.filter(([u]) => u !== '0xM')).toEqual([['0xA', 'one']]);
    await bus.close();
  });

  it('bus delivers group channels apart from user channels, to subscribed groups only', async () => {
    const bus = impl.bus();
    const users: [string, string][] = [];
    const groups: [string, string][] = [];
    bus.onDeliver((u, p) => users.push([u, p]));
    bus.onGroupDeliver((g, p) => groups.push([g, p]));
    const marked = (m: string) => expect.poll(() => groups.some(([g, p]) => g === 'gm' && p === m), { timeout: 5_000, interval: 10 }).toBe(true);
    await bus.subscribe('ga');
    await bus.subscribeGroup('ga');
    await bus.subscribeGroup('gm');
    await bus.publishGroup('ga', 'to the group');
    await bus.publishGroup('gb', 'not mine');
    await bus.publishGroup('gm', 'm1');
    await marked('m1');
    await bus.unsubscribeGroup('ga');
    await bus.publishGroup('ga', 'after');
    await bus.publishGroup('gm', 'm2');
    await marked('m2');
    expect(groups.filter(([g]) => g !== 'gm')).toEqual([['ga', 'to the group']]);
    // A user and a group of the same name are different channels.
    expect(users).toEqual([]);
    await bus.close();
  });

  it('nonces are single use and expire', async () => {
    const nonces = impl.nonces();
    await nonces.issue('n-aaaaaaaa', 60);
    const results = await Promise.all([nonces.consume('n-aaaaaaaa'), nonces.consume('n-aaaaaaaa'), nonces.consume('n-aaaaaaaa')]);
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(await nonces.consume('never-issued')).toBe(false);
    await nonces.issue('n-bbbbbbbb', 1);
    // Not a synchronisation: the one-second lifetime has to pass.
    await new Promise((r) => setTimeout(r, 1100));
    expect(await nonces.consume('n-bbbbbbbb')).toBe(false);
  });

  it('rate limiter allows the limit per window and says when to retry', async () => {
    const limiter = impl.limiter();
    const rule = { limit: 3, windowMs: 500 };
    const hits = [];
    for (let i = 0; i < 5; i++) hits.push(await limiter.hit('t', `${kind}-id`, rule));
    expect(hits.map((h) => h.ok)).toEqual([true, true, true, false, false]);
    expect(hits[3]!.retryAfterMs).toBeGreaterThan(0);
    expect(hits[3]!.retryAfterMs).toBeLessThanOrEqual(500);
    // Admitted again once the window has passed, and not before the hint said.
    const refusedAt = Date.now();
    await expect.poll(async () => (await limiter.hit('t', `${kind}-id`, rule)).ok, { timeout: 3_000, interval: 25 }).toBe(true);
    expect(Date.now() - refusedAt).toBeGreaterThanOrEqual(hits[4]!.retryAfterMs - 50);
  });

  it('presence counts devices and remembers when the last one left', async () => {
    const p = impl.presence('node-1');
    const user = `0xUser${kind}`;
    expect(await p.connect(user, 'c1')).toBe(true);
    expect(await p.connect(user, 'c2')).toBe(false);
    expect((await p.query([user])).get(user)).toEqual({ online: true, lastSeen: null });
    expect(await p.disconnect(user, 'c1', 1000)).toBe(false);
    expect(await p.disconnect(user, 'c2', 2000)).toBe(true);
    expect(await p.disconnect(user, 'c2', 3000)).toBe(false);
    expect((await p.query([user])).get(user)).toEqual({ online: false, lastSeen: 2000 });
  });
});

describe('redis rate limiter across nodes', () => {
  it('never admits more than the limit in total, and spends reserved slices without asking Redis each time', async () => {
    const rule = { limit: 100, windowMs: 5_000 };
    const [ra, rb] = [redis(), redis()];
    const [a, b] = [new RedisRateLimiter(ra, keys), new RedisRateLimiter(rb, keys)];
    const reserve = (r: Redis) => vi.spyOn(r as unknown as { rateReserve: () => Promise<[number, number]> }, 'rateReserve');
    const [sa, sb] = [reserve(ra), reserve(rb)];
    const hits = await Promise.all(Array.from({ length: 160 }, (_, i) => (i % 2 ? a : b).hit('lease', 'user-1', rule)));
    const admitted = hits.filter((h) => h.ok).length;
    // Each node holds at most one unused slice of a tenth of the limit.
    expect(admitted).toBeLessThanOrEqual(100);
    expect(admitted).toBeGreaterThanOrEqual(100 - 9);
    for (const h of hits.filter((x) => !x.ok)) expect(h.retryAfterMs).toBeGreaterThan(0);
    expect(Number(await ra.get(keys.rate('lease', 'user-1')))).toBe(100);
    // Slices of ten: ten reservations in all, plus the one per node that learns the window is spent.
    expect(sa.mock.calls.length + sb.mock.calls.length).toBe(12);
    // Refused locally for the rest of the window: no more Redis traffic.
    expect((await a.hit('lease', 'user-1', rule)).ok).toBe(false);
    expect(sa.mock.calls.length + sb.mock.calls.length).toBe(12);
  });
});

describe('redis presence sweep', () => {
  it('clears the connections of a node that stopped heartbeating, once', async () => {
    const dead = impls.redis.presence('dead-node');
    const alive = impls.redis.presence('alive-node');
    const other = impls.redis.presence('other-node');
    const now = Date.now();
    await dead.heartbeat(now - 5000);
    await alive.heartbeat(now);
    await other.heartbeat(now);
    await dead.connect('0xGone', 'd1');
    await dead.connect('0xBoth', 'd2');
    await alive.connect('0xBoth', 'a1');
    const [s1, s2] = await Promise.all([alive.sweep(now), other.sweep(now)]);
    const swept = [...s1, ...s2];
    expect(swept).toEqual([{ user: '0xGone', lastSeen: now }]);
    const q = await alive.query(['0xGone', '0xBoth']);
    expect(q.get('0xGone')).toEqual({ online: false, lastSeen: now });
    expect(q.get('0xBoth')!.online).toBe(true);
    expect(await alive.sweep(now + 100)).toEqual([]);
  });
});

describe('redis bus after its subscriber connection drops', () => {
  it('subscribes user and group channels again, then calls every recover handler', async () => {
    const sub = redis();
    const bus = new RedisBus(redis(), sub, keys);
    const got: string[] = [];
    bus.onDeliver((u, p) => got.push(`${u}:${p}`));
    bus.onGroupDeliver((g, p) => got.push(`${g}:${p}`));
    let recovered = 0;
    bus.onRecover(() => recovered++);
    bus.onRecover(() => recovered++);
    await bus.subscribe('0xR');
    await bus.subscribeGroup('gr');
    sub.disconnect(true);
    await expect.poll(() => recovered, { timeout: 10_000, interval: 20 }).toBe(2);
    await bus.publish('0xR', 'u');
    await bus.publishGroup('gr', 'g');
    await expect.poll(() => got.sort(), { timeout: 5_000, interval: 10 }).toEqual(['0xR:u', 'gr:g']);
    await bus.close();
  });
});
