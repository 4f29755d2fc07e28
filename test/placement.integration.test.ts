import { Wallet } from 'ethers';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClient } from '../testkit/client.ts';
import { MediaPeer, until } from '../testkit/media-peer.ts';
import { migrate, startNode, type NodeProcess } from '../testkit/node.ts';
import { freePortBase } from '../testkit/ports.ts';
import { createTestDatabase, query } from '../testkit/pg.ts';
import { REDIS_URL, clearPrefix, testPrefix } from '../testkit/redis.ts';

/** Placement across SFU node processes: load, staleness, failure, and a call spanning workers. */
describe('call placement on the media fleet', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  const prefixes: string[] = [];
  const procs: NodeProcess[] = [];
  const clients: TestClient[] = [];
  const peers: MediaPeer[] = [];

  /** How old a heartbeat may be before its node is skipped (PRESENCE_STALE_MS). */
  const STALE_MS = 2000;
  const env = (prefix: string, extra: Record<string, string> = {}) => ({
    DATABASE_URL: db.url,
    REDIS_URL,
    REDIS_KEY_PREFIX: prefix,
    RATE_LIMIT_AUTH: '10000/60',
    RATE_LIMIT_CONNECT: '10000/60',
    // Calls here are started back to back by one caller to fill workers; the spam limits are tested elsewhere.
    RATE_LIMIT_CALLS: '10000/60',
    CALL_MAX_RINGING_PER_CALLER: '1000',
    CALL_MAX_RINGING_PER_CALLEE: '1000',
    WS_MAX_FRAMES_PER_SECOND: '500',
    PRESENCE_HEARTBEAT_MS: '500',
    PRESENCE_STALE_MS: String(STALE_MS),
    SFU_COMMAND_TIMEOUT_MS: '2000',
    ...extra,
  });
  const start = async (cmd: 'signaling' | 'sfu', prefix: string, extra: Record<string, string> = {}) => {
    const e = cmd === 'sfu' ? { SFU_WORKERS: '2', SFU_PORT_BASE: String(await freePortBase(2)), ...extra } : extra;
    const n = await startNode(cmd, env(prefix, e));
    procs.push(n);
    return n;
  };
  const user = async (node: NodeProcess) => {
    const c = await TestClient.signInAndConnect(node.url, Wallet.createRandom());
    clients.push(c);
    return c;
  };
  /** The registry's view of an SFU node: its last heartbeat (ms) and whether it said it drains. */
  const registered = async (prefix: string, node: string) => {
    const r = new Redis(REDIS_URL);
    try {
      const [at, draining] = await Promise.all([r.zscore(`${prefix}{sfu}:nodes`, node), r.hget(`${prefix}{sfu}:node:${node}`, 'draining')]);
      return { at: at === null ? null : Number(at), draining: draining === '1' };
    } finally {
      r.disconnect();
    }
  };
  const placement = async (callId: string) => {
    const [row] = await query<{ sfu_node: string; sfu_worker: number }>(db.url, 'select sfu_node, sfu_worker from calls where id = $1', [callId]);
    return `${row!.sfu_node}/${row!.sfu_worker}`;
  };
  /** Two users in a call with audio flowing from the first to the second. */
  const mediaCall = async (callId: string, caller: TestClient, callee: TestClient) => {
    const p1 = new MediaPeer(caller, callId);
    const p2 = new MediaPeer(callee, callId);
    peers.push(p1, p2);
    await p1.start();
    await p2.start();
    const prod = await p1.produce('audio');
    await p2.consume({ producerId: prod.id, kind: 'audio' });
    await until(() => p2.packetsFrom(prod.id) > 10, 15_000, 'audio through the SFU');
    return { p1, p2 };
  };

  beforeAll(async () => {
    db = await createTestDatabase('placement');
    await migrate(db.url);
  });
  afterAll(async () => {
    for (const p of peers) p.close();
    for (const c of clients) c.ws.terminate();
    await Promise.all(procs.map((p) => p.kill('SIGKILL')));
    for (const p of prefixes) await clearPrefix(p);
    await db.drop();
  });

  it('spreads calls over the least-loaded workers, skips a stale node, and moves calls off a killed node', async () => {
    const prefix = testPrefix('place');
    prefixes.push(prefix);
    const [sig, s1, s2] = await Promise.all([start('signaling', prefix), start('sfu', prefix, { NODE_ID: 'sfu-one' }), start('sfu', prefix, { NODE_ID: 'sfu-two' })]);
    for (const s of [s1, s2]) {
      const ready = await fetch(`${s.url}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toMatchObject({ status: 'ready', workers: 2 });
    }
    const caller = await user(sig);
    const callees = await Promise.all([1, 2, 3, 4].map(() => user(sig)));

    // Four callers at once (one caller's starts are serialised by its ringing cap, and a
    // heartbeat in between would reset the placements not yet in the load).
    const callers = await Promise.all(callees.map(() => user(sig)));
    const first = await Promise.all(callees.map((c, i) => callers[i]!.request('call.start', { to: [c.address], kind: 'audio' })));
    const spots = await Promise.all(first.map((c) => placement(c.callId)));
    expect(new Set(spots).size).toBe(4); // two nodes × two workers, one call each
    for (const [i, c] of first.entries()) await callers[i]!.request('call.cancel', { callId: c.callId });

    // A node that stops heartbeating is not chosen.
    s2.proc.kill('SIGSTOP');
    await expect.poll(async () => Date.now() - ((await registered(prefix, 'sfu-two')).at ?? 0), { timeout: 10_000, interval: 200 }).toBeGreaterThan(STALE_MS + 200);
    const whileStale = await Promise.all(callees.slice(0, 2).map((c) => caller.request('call.start', { to: [c.address], kind: 'audio' })));
    for (const c of whileStale) expect(await placement(c.callId)).toMatch(/^sfu-one\//);
    for (const c of whileStale) await caller.request('call.cancel', { callId: c.callId });
    const resumedAt = Date.now();
    s2.proc.kill('SIGCONT');
    await expect.poll(async () => (await registered(prefix, 'sfu-two')).at ?? 0, { timeout: 10_000, interval: 100 }).toBeGreaterThan(resumedAt);

    // A live call on a node that is killed is placed again and its participants rejoin.
    const callee = callees[0]!;
    const { callId } = await caller.request('call.start', { to: [callee.address], kind: 'audio' });
    await callee.request('call.accept', { callId });
    const { p1, p2 } = await mediaCall(callId, caller, callee);
    const before = await placement(callId);
    const victim = before.startsWith('sfu-one') ? s1 : s2;
    await victim.kill('SIGKILL');
    await caller.waitFor('call.rejoin', (e) => e.callId === callId, 10_000);
    await callee.waitFor('call.rejoin', (e) => e.callId === callId, 10_000);
    p1.close();
    p2.close();
    const after = await placement(callId);
    expect(after.split('/')[0]).not.toBe(before.split('/')[0]);
    await mediaCall(callId, caller, callee);
  });

  it('extends a call that outgrows its worker to another worker with pipeToRouter', async () => {
    const prefix = testPrefix('pipe');
    prefixes.push(prefix);
    const [sig, node] = await Promise.all([start('signaling', prefix), start('sfu', prefix, { SFU_MAX_CONSUMERS_PER_WORKER: '1' })]);
    const [u1, u2, u3] = await Promise.all([user(sig), user(sig), user(sig)]);
    const { callId } = await u1.request('call.start', { to: [u2.address, u3.address], kind: 'audio' });
    const p1 = new MediaPeer(u1, callId);
    const p2 = new MediaPeer(u2, callId);
    const p3 = new MediaPeer(u3, callId);
    peers.push(p1, p2, p3);
    await p1.start();
    const prod = await p1.produce('audio');
    await p2.start();
    await p2.consume({ producerId: prod.id, kind: 'audio' }); // fills the primary worker
    await p3.start(); // lands on the other worker
    await p3.consume({ producerId: prod.id, kind: 'audio' });
    await until(() => p2.packetsFrom(prod.id) > 10 && p3.packetsFrom(prod.id) > 10, 15_000, 'audio on both workers');
    expect((await fetch(`${node.url}/metrics`)).status).toBe(404);
    const metrics = await (await fetch(`${node.metricsUrl}/metrics`)).text();
    expect(metrics).toMatch(/blockrtc_sfu_routers\{worker="0"\} 1/);
    expect(metrics).toMatch(/blockrtc_sfu_routers\{worker="1"\} 1/);
  });

  it('restarts a worker that dies and has its call rejoined', async () => {
    const prefix = testPrefix('worker');
    prefixes.push(prefix);
    const [sig, node] = await Promise.all([start('signaling', prefix), start('sfu', prefix, { SFU_WORKERS: '1' })]);
    const [u1, u2] = await Promise.all([user(sig), user(sig)]);
    const { callId } = await u1.request('call.start', { to: [u2.address], kind: 'audio' });
    await u2.request('call.accept', { callId });
    const first = await mediaCall(callId, u1, u2);
    const ready = node.logs.filter((l) => l.includes('mediasoup worker ready')).map((l) => JSON.parse(l) as { pid: number });
    process.kill(ready.at(-1)!.pid, 'SIGKILL');
    await u1.waitFor('call.rejoin', (e) => e.callId === callId, 10_000);
    await u2.waitFor('call.rejoin', (e) => e.callId === callId, 10_000);
    first.p1.close();
    first.p2.close();
    await until(() => node.logs.filter((l) => l.includes('mediasoup worker ready')).length > ready.length, 10_000, 'worker restart');
    await mediaCall(callId, u1, u2);
  });

  it('drains on SIGTERM: new calls go elsewhere, the running call continues until it ends', async () => {
    const prefix = testPrefix('drain');
    prefixes.push(prefix);
    const [sig, s1] = await Promise.all([start('signaling', prefix), start('sfu', prefix, { NODE_ID: 'sfu-draining', SFU_WORKERS: '1', DRAIN_TIMEOUT_MS: '60000' })]);
    const [u1, u2, u3, u4] = await Promise.all([user(sig), user(sig), user(sig), user(sig)]);
    const { callId } = await u1.request('call.start', { to: [u2.address], kind: 'audio' });
    await u2.request('call.accept', { callId });
    const { p2 } = await mediaCall(callId, u1, u2);
    const s2 = await start('sfu', prefix, { NODE_ID: 'sfu-other', SFU_WORKERS: '1' });
    s1.proc.kill('SIGTERM');
    await expect.poll(async () => (await fetch(`${s1.url}/readyz`)).status, { timeout: 10_000, interval: 100 }).toBe(503);
    // Placement reads the registry: wait for the heartbeat that says so (and one from the new node).
    await expect.poll(async () => (await registered(prefix, 'sfu-draining')).draining, { timeout: 10_000, interval: 100 }).toBe(true);
    await expect.poll(async () => (await registered(prefix, 'sfu-other')).at, { timeout: 10_000, interval: 100 }).not.toBeNull();
    const next = await u3.request('call.start', { to: [u4.address], kind: 'audio' });
    expect(await placement(next.callId)).toMatch(/^sfu-other\//);
    await u3.request('call.cancel', { callId: next.callId });
    // The running call still carries media on the draining node.
    const [producerId] = [...p2.received.keys()];
    const before = p2.packetsFrom(producerId!);
    await until(() => p2.packetsFrom(producerId!) > before + 20, 5_000, 'audio on the draining node');
    expect(s1.proc.exitCode).toBeNull();
    await u1.request('call.leave', { callId });
    await u2.request('call.leave', { callId });
    expect(await s1.exited).toBe(0);
    expect(s2.proc.exitCode).toBeNull();
  });
});
