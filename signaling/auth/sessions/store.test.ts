import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { redisKeys } from '../../../infra/redis/connect.ts';
import { REDIS_URL, clearPrefix, testPrefix } from '../../../testkit/redis.ts';
import type { Connection } from '../../ws/connection.ts';
import { SessionService } from '../session-service.ts';
import { TokenService } from '../tokens.ts';
import { MemorySessionStore } from './memory.ts';
import { RedisSessionStore } from './redis.ts';
import type { SessionStore } from './store.ts';

const ADDRESS = '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed';
const prefix = testPrefix('sessstore');
const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 2 });

afterAll(async () => {
  await clearPrefix(prefix);
  redis.disconnect();
});

describe.each([
  ['memory', () => new MemorySessionStore() as SessionStore],
  ['redis', () => new RedisSessionStore(redis, redisKeys(prefix), prefix) as SessionStore],
] as const)('%s session store', (_name, make) => {
  it('creates, rotates with a grace for the previous generation, and ends sessions', async () => {
    const store = make();
    const s = await store.create(ADDRESS, 3600);
    expect(s.gen).toBe(1);
    expect(await store.get(s.id)).toMatchObject({ address: ADDRESS, gen: 1, expiresAt: s.expiresAt });
    const r = await store.rotate(s.id, 5000, 1);
    expect(r).toMatchObject({ gen: 2, expiresAt: s.expiresAt });
    expect(r!.previousUntil).toBeGreaterThan(Date.now());
    // A holder still at generation 1 converges on 2 instead of moving the session on.
    expect(await store.rotate(s.id, 5000, 1)).toMatchObject({ gen: 2, previousUntil: r!.previousUntil });
    const since = Date.now();
    await store.end(s.id, s.expiresAt);
    expect(await store.get(s.id)).toMatchObject({ ended: true });
    expect(await store.rotate(s.id, 5000, 2)).toBeNull();
    expect(await store.endedSince(since - 1)).toContain(s.id);
    // A signed token cannot bring an ended session back.
    expect(await store.restore({ id: s.id, address: ADDRESS, expiresAt: s.expiresAt, gen: 2 })).toMatchObject({ ended: true });
  });

  it('restores a session it lost from a signed token, without overwriting one it has', async () => {
    const store = make();
    const lost = { id: 'lost-session-1', address: ADDRESS, expiresAt: Date.now() + 60_000, gen: 3 };
    expect(await store.get(lost.id)).toBeNull();
    expect(await store.restore(lost)).toMatchObject({ ...lost, ended: false });
    expect(await store.get(lost.id)).toMatchObject({ gen: 3, ended: false });
    expect(await store.restore({ ...lost, gen: 1 })).toMatchObject({ gen: 3 });
    expect(await store.restore({ ...lost, id: 'lost-session-2', expiresAt: Date.now() - 1 })).toBeNull();
  });

  it('forgets a session after its absolute end', async () => {
    const store = make();
    const s = await store.create(ADDRESS, 1);
    await new Promise((r) => setTimeout(r, 1100));
    expect(await store.get(s.id)).toBeNull();
    expect(await store.rotate(s.id, 1000, 1)).toBeNull();
  });
});

describe('SessionService', () => {
  const fakeConn = () => {
    const c = { address: ADDRESS, tokenExpiresAt: 0, closed: false, closeCode: 0, close: (code: number) => ((c.closeCode = code), (c.closed = true)) };
    return c as unknown as Connection & { closeCode: number };
  };
  const setup = (maxAgeSec = 3600) => {
    const conns: Connection[] = [];
    const svc = new SessionService(new MemorySessionStore(), new TokenService('x'.repeat(40), 600), { maxAgeSec, maxConnectionsPerUser: 2 }, {
      forEach: (fn) => conns.forEach(fn),
      local: () => new Set(conns),
    });
    return { svc, conns };
  };

  it('accepts the current and previous generation, refuses older ones and ended sessions', async () => {
    const { svc } = setup();
    const t1 = await svc.signIn(ADDRESS);
    const claims = await svc.check(t1.token);
    const conn = fakeConn();
    svc.bind(conn, claims);
    const t2 = await svc.refresh(conn);
    const t3 = await svc.refresh(conn);
    await expect(svc.check(t1.token)).rejects.toMatchObject({ code: 'AUTH_TOKEN_SUPERSEDED' });
    await expect(svc.check(t2.token)).resolves.toMatchObject({ gen: 2 });
    await expect(svc.check(t3.token)).resolves.toMatchObject({ gen: 3 });
    await svc.signOutWithToken(t1.token);
    await expect(svc.check(t3.token)).rejects.toMatchObject({ code: 'AUTH_SESSION_ENDED' });
  });

  it('keeps sessions through a store that lost them (a Redis restart): the signed token restores its session, and refresh and sign-out still work', async () => {
    const tokens = new TokenService('x'.repeat(40), 600);
    const before = new SessionService(new MemorySessionStore(), tokens, { maxAgeSec: 3600, maxConnectionsPerUser: 2 }, { forEach: () => undefined, local: () => undefined });
    const t = await before.signIn(ADDRESS);
    // The same tokens against an empty store, as after Redis came back without its data.
    const conns: Connection[] = [];
    const after = new SessionService(new MemorySessionStore(), tokens, { maxAgeSec: 3600, maxConnectionsPerUser: 2 }, { forEach: (fn) => conns.forEach(fn), local: () => new Set(conns) });
    const claims = await after.check(t.token);
    expect(claims).toMatchObject({ address: ADDRESS, gen: 1 });
    expect(claims.sessionExpiresAt).toBeLessThanOrEqual(t.sessionExpiresAt);
    const conn = fakeConn();
    conns.push(conn);
    after.bind(conn, claims);
    const t2 = await after.refresh(conn);
    await expect(after.check(t2.token)).resolves.toMatchObject({ gen: 2 });
    await after.signOut(conn);
    await expect(after.check(t2.token)).rejects.toMatchObject({ code: 'AUTH_SESSION_ENDED' });
    await expect(after.check(t.token)).rejects.toMatchObject({ code: 'AUTH_SESSION_ENDED' });
  });

  it('never issues a token past the session end', async () => {
    const { svc } = setup(30);
    const t = await svc.signIn(ADDRESS);
    expect(t.expiresAt).toBeLessThanOrEqual(t.sessionExpiresAt);
    expect(t.sessionExpiresAt - Date.now()).toBeLessThanOrEqual(30_000);
    const conn = fakeConn();
    svc.bind(conn, await svc.check(t.token));
    conn.tokenExpiresAt = t.expiresAt;
    expect(svc.canExtend(conn)).toBe(false);
    expect((await svc.refresh(conn)).expiresAt).toBeLessThanOrEqual(t.sessionExpiresAt);
  });

  it('refuses a connection over the per-user cap with TOO_MANY_CONNECTIONS', async () => {
    const { svc, conns } = setup();
    await expect(svc.admit(ADDRESS)).resolves.toBeUndefined();
    conns.push(fakeConn(), fakeConn());
    await expect(svc.admit(ADDRESS)).rejects.toMatchObject({ code: 'TOO_MANY_CONNECTIONS', status: 429 });
  });
  it('closes the sockets of a signed-out session in this process at once, and those of sessions ended elsewhere on the next poll', async () => {
    const store = new MemorySessionStore();
    const conns: (Connection & { closeCode: number })[] = [];
    const svc = new SessionService(store, new TokenService('x'.repeat(40), 600), { maxAgeSec: 3600, maxConnectionsPerUser: 10 }, {
      forEach: (fn) => conns.forEach(fn),
      local: () => new Set(conns),
    });
    const bind = async (token: string) => {
      const c = fakeConn();
      svc.bind(c, await svc.check(token));
      conns.push(c);
      return c;
    };
    const s1 = await svc.signIn(ADDRESS);
    const s2 = await svc.signIn(ADDRESS);
    const [a, b, other] = [await bind(s1.token), await bind(s1.token), await bind(s2.token)];
    await svc.signOut(a);
    await new Promise((r) => setImmediate(r));
    expect([a.closeCode, b.closeCode, other.closeCode]).toEqual([4003, 4003, 0]);

    // Ended by another node: only the store knows; the housekeeping poll closes the socket.
    const sid = svc.sessionOf(other)!;
    await store.end(sid, Date.now() + 60_000);
    expect(other.closeCode).toBe(0);
    await svc.pollEnded();
    expect(other.closeCode).toBe(4003);
  });
  it('keeps every connection of a session on one generation: a refresh hands the others on this node the new token', async () => {
    const store = new MemorySessionStore();
    const conns: Connection[] = [];
    const svc = new SessionService(store, new TokenService('x'.repeat(40), 600), { maxAgeSec: 3600, maxConnectionsPerUser: 10 }, {
      forEach: (fn) => conns.forEach(fn),
      local: () => new Set(conns),
    });
    const s = await svc.signIn(ADDRESS);
    const pushed: string[] = [];
    const mk = async () => {
      const c = { address: ADDRESS, tokenExpiresAt: s.expiresAt, closed: false, event: (_ev: string, d: { token: string }) => pushed.push(d.token) } as unknown as Connection;
      svc.bind(c, await svc.check(s.token));
      conns.push(c);
      return c;
    };
    const [tabA, tabB] = [await mk(), await mk()];
    const t = await svc.refresh(tabA);
    expect(pushed).toEqual([t.token]);
    await expect(svc.check(t.token)).resolves.toMatchObject({ gen: 2 });
    // The other tab refreshing next moves the session on and hands tab A the new token in turn.
    const again = await svc.refresh(tabB);
    await expect(svc.check(again.token)).resolves.toMatchObject({ gen: 3 });
    expect(pushed).toEqual([t.token, again.token]);
  });
});
