import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../config/config.ts';
import { openDatabase, type Database } from '../db/client.ts';
import { createLogger } from '../infra/logger.ts';
import { startSignaling, type SignalingNode } from '../signaling/node.ts';
import { RequestError, TestClient } from '../testkit/client.ts';
import { TEST_JWT_SECRET } from '../testkit/node.ts';
import { createTestDatabase, query } from '../testkit/pg.ts';
import { freePort } from '../testkit/ports.ts';
import { REDIS_URL, clearPrefix, testPrefix } from '../testkit/redis.ts';
import { startPrivateRedis, type PrivateRedis } from '../testkit/services.ts';

/**
 * Chat stays live, not just durable: unstorable text, retried sends, drain, Redis outage.
 * Signaling nodes in this process on real PostgreSQL and Redis (a private Redis where it
 * is killed).
 */

const MARKER = 'liveness-body-';

interface InProcessNode {
  node: SignalingNode;
  database: Database;
  logs: string[];
}

async function startInProcess(env: Record<string, string>): Promise<InProcessNode> {
  const config = loadConfig('signaling', {
    HOST: '127.0.0.1',
    PORT: '0',
    JWT_SECRET: TEST_JWT_SECRET,
    RATE_LIMIT_AUTH: '10000/60',
    RATE_LIMIT_CONNECT: '10000/60',
    RATE_LIMIT_MESSAGES: '100000/10',
    WS_MAX_FRAMES_PER_SECOND: '1000',
    DRAIN_TIMEOUT_MS: '5000',
    LOG_LEVEL: 'info',
    ...env,
  });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logs.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  const log = createLogger(config, sink);
  const database = await openDatabase(config.db);
  const node = await startSignaling({ config, database, log });
  return { node, database, logs };
}

async function stopInProcess(n: InProcessNode | undefined): Promise<void> {
  if (!n) return;
  await n.node.close();
  await n.database.close();
}

const settle = <T>(p: Promise<T>) => p.then((v) => ({ ok: true as const, v }), (e: unknown) => ({ ok: false as const, e }));

describe('chat liveness', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let prefix: string;

  beforeAll(async () => {
    db = await createTestDatabase('liveness');
    const d = await openDatabase({ url: db.url, dataDir: '', poolSize: 1 });
    await d.migrate();
    await d.close();
    prefix = testPrefix('liveness');
  });
  afterAll(async () => {
    await clearPrefix(prefix);
    await db?.drop();
  });

  it('refuses text PostgreSQL cannot store, while the other sends of the same tick are stored', async () => {
    const n = await startInProcess({ DATABASE_URL: db.url, REDIS_URL, REDIS_KEY_PREFIX: prefix, NODE_ID: 'live1' });
    try {
      const alice = await TestClient.signInAndConnect(n.node.url);
      const bob = await TestClient.signInAndConnect(n.node.url);
      const bad = [`${MARKER}a\u0000b`, `${MARKER}\ud800x`, `${MARKER}x\udfff`];
      const results = await Promise.all([
        ...bad.map((text) => settle(alice.send(bob.address, text))),
        ...Array.from({ length: 5 }, (_, i) => settle(bob.send(alice.address, `${MARKER}good-${i}`))),
        settle(alice.send(bob.address, `${MARKER}good 👋`)),
      ]);
      for (const r of results.slice(0, bad.length)) {
        expect(r.ok).toBe(false);
        expect(((r as { e: RequestError }).e.body.code)).toBe('INVALID_FIELDS');
      }
      expect(results.slice(bad.length).every((r) => r.ok)).toBe(true);
      const rows = await query<{ body: string }>(db.url, 'select body from messages where sender = $1 or sender = $2', [alice.address, bob.address]);
      expect(rows).toHaveLength(6);
      expect(n.logs.filter((l) => l.includes(MARKER))).toEqual([]);
      await alice.close();
      await bob.close();
    } finally {
      await stopInProcess(n);
    }
  });

  it('publishes a retried send again (duplicate: true), so a message whose first node died before publishing still arrives live', async () => {
    const [n1, n2] = await Promise.all([
      startInProcess({ DATABASE_URL: db.url, REDIS_URL, REDIS_KEY_PREFIX: prefix, NODE_ID: 'live2' }),
      startInProcess({ DATABASE_URL: db.url, REDIS_URL, REDIS_KEY_PREFIX: prefix, NODE_ID: 'live3' }),
    ]);
    try {
      const alice = await TestClient.signInAndConnect(n1.node.url);
      const bob = await TestClient.signInAndConnect(n2.node.url);
      const clientId = randomUUID();
      const first = await alice.send(bob.address, `${MARKER}once`, clientId);
      expect(first.duplicate).toBe(false);
      await bob.waitFor('chat.message', (m) => m.id === first.id);
      const again = await alice.send(bob.address, `${MARKER}once`, clientId);
      expect(again).toMatchObject({ id: first.id, duplicate: true });
      await expect.poll(() => bob.eventsOf('chat.message').filter((m) => m.id === first.id).length).toBe(2);
      expect(await query(db.url, 'select 1 from messages where client_id = $1', [clientId])).toHaveLength(1);
      await alice.close();
      await bob.close();
    } finally {
      await Promise.all([stopInProcess(n1), stopInProcess(n2)]);
    }
  });

  it('drain answers every send it accepted and closes every socket with 1012', async () => {
    const n = await startInProcess({ DATABASE_URL: db.url, REDIS_URL, REDIS_KEY_PREFIX: prefix, NODE_ID: 'live4' });
    let drained = false;
    try {
      const clients = await Promise.all(Array.from({ length: 6 }, () => TestClient.signInAndConnect(n.node.url)));
      const peer = clients[0]!.address;
      const sends = clients.slice(1).flatMap((c) => Array.from({ length: 60 }, (_, i) => settle(c.send(peer, `${MARKER}drain-${i}`))));
      await clients[1]!.waitFor('session.hello');
      // Drain while the sends are being committed and answered.
      await new Promise((r) => setTimeout(r, 5));
      const drain = n.node.drain('test drain');
      const results = await Promise.all(sends);
      await drain;
      drained = true;
      const codes = await Promise.all(clients.map((c) => c.closed));
      expect(codes).toEqual(clients.map(() => 1012));
      for (const c of clients) expect(c.events.some((e) => e.ev === 'session.draining')).toBe(true);
      const acked = results.filter((r) => r.ok).map((r) => (r as { v: { id: string } }).v.id);
      const refused = results.filter((r) => !r.ok).map((r) => String((r as { e: Error }).e.message));
      // Every send was answered: acked, or refused with a code (never cut off by the close).
      expect(refused.filter((m) => /^closed/.test(m))).toEqual([]);
      const stored = await query<{ id: string }>(db.url, 'select id::text as id from messages where recipient = $1', [peer]);
      expect(new Set(stored.map((r) => r.id))).toEqual(new Set(acked));
    } finally {
      if (!drained) await n.node.close();
      await n.database.close();
    }
  });

  it('after a Redis outage, connections are told to resync (no reconnect) and live delivery resumes across nodes', async () => {
    const redis: PrivateRedis = await startPrivateRedis(await freePort());
    // A small message limit: its leases (2 hits) run out during the outage, so the sends
    // below also show that the limit stays open while Redis cannot be asked.
    const env = { DATABASE_URL: db.url, REDIS_URL: redis.url, RATE_LIMIT_MESSAGES: '20/10' };
    const [n1, n2] = await Promise.all([startInProcess({ ...env, NODE_ID: 'live5' }), startInProcess({ ...env, NODE_ID: 'live6' })]);
    try {
      const alice = await TestClient.signInAndConnect(n1.node.url);
      const bob = await TestClient.signInAndConnect(n2.node.url);
      const warm = await alice.send(bob.address, `${MARKER}before`);
      await bob.waitFor('chat.message', (m) => m.id === warm.id);

      await redis.kill();
      // Stored and acked while Redis is down: publishing them fails.
      const during = [];
      for (let i = 0; i < 5; i++) during.push(await alice.send(bob.address, `${MARKER}during-${i}`));
      await new Promise((r) => setTimeout(r, 1000));
      const restartedAt = Date.now();
      await redis.start();

      const resync = await bob.waitFor('session.resync', () => true, 5000);
      const resyncMs = Date.now() - restartedAt;
      expect(['bus-reconnected', 'publish-failed']).toContain(resync.reason);
      expect(resyncMs).toBeLessThan(3000);
      const synced = await bob.request('chat.sync', { after: warm.id });
      expect(synced.messages.map((m) => m.id)).toEqual(expect.arrayContaining(during.map((d) => d.id)));
      // The sender's node tells the users it failed to publish to, once it can publish again.
      await alice.waitFor('session.resync', () => true, 5000);

      // Subscriptions are back: a new message is pushed live to the other node's client.
      const after = await alice.send(bob.address, `${MARKER}after`);
      await bob.waitFor('chat.message', (m) => m.id === after.id, 3000);
      expect(bob.closeCode).toBeNull();
      expect(alice.closeCode).toBeNull();
      for (const n of [n1, n2]) expect(n.logs.filter((l) => l.includes(MARKER))).toEqual([]);
      expect(n1.logs.filter((l) => l.includes('message rate limit unavailable')).length).toBeGreaterThanOrEqual(1);
      expect(n1.logs.filter((l) => l.includes('"request failed"'))).toEqual([]);
      await alice.close();
      await bob.close();
    } finally {
      await Promise.all([stopInProcess(n1), stopInProcess(n2)]);
      await redis.kill();
    }
  });
});
