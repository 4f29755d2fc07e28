import { Wallet } from 'ethers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RequestError, TestClient } from '../testkit/client.ts';
import { MediaPeer } from '../testkit/media-peer.ts';
import { migrate, startNode, type NodeProcess } from '../testkit/node.ts';
import { freePortBase } from '../testkit/ports.ts';
import { createTestDatabase } from '../testkit/pg.ts';
import { REDIS_URL, clearPrefix, testPrefix } from '../testkit/redis.ts';

const TURN_TTL = 600;

/**
 * Abuse limits of calls through a signaling node and an SFU node with one small worker (real
 * mediasoup, werift peers, PostgreSQL, Redis): media capacity per participant, call spam,
 * and TURN credentials only for joined participants of live calls.
 */
describe('call limits', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  const prefix = testPrefix('calllimits');
  const procs: NodeProcess[] = [];
  const clients: TestClient[] = [];
  const peers: MediaPeer[] = [];
  let sig: NodeProcess;

  const env = () => ({
    DATABASE_URL: db.url,
    REDIS_URL,
    REDIS_KEY_PREFIX: prefix,
    RATE_LIMIT_AUTH: '10000/60',
    RATE_LIMIT_CONNECT: '10000/60',
    WS_MAX_FRAMES_PER_SECOND: '500',
    PRESENCE_HEARTBEAT_MS: '500',
    PRESENCE_STALE_MS: '3000',
    SFU_COMMAND_TIMEOUT_MS: '3000',
    // One worker that is "full" at 3 consumers: a participant that could pile up consumers
    // would lock everyone else out of new calls.
    SFU_MAX_CONSUMERS_PER_WORKER: '3',
    CALL_MAX_DEVICES_PER_PARTICIPANT: '4',
    RATE_LIMIT_CALLS: '10/60',
    CALL_MAX_RINGING_PER_CALLER: '3',
    CALL_MAX_RINGING_PER_CALLEE: '2',
    TURN_URLS: 'turn:127.0.0.1:3478',
    TURN_SECRET: 'turn-secret-for-limits-test',
    TURN_TTL_SECONDS: String(TURN_TTL),
  });
  const user = async (wallet = Wallet.createRandom()) => {
    const c = await TestClient.signInAndConnect(sig.url, wallet);
    clients.push(c);
    return c;
  };
  const peer = (c: TestClient, callId: string) => {
    const p = new MediaPeer(c, callId);
    peers.push(p);
    return p;
  };
  const code = (p: Promise<unknown>) => p.then(() => 'ok', (e: unknown) => (e instanceof RequestError ? e.body.code : String(e)));
  const expiry = (username: string) => Number(username.split(':')[0]);

  beforeAll(async () => {
    db = await createTestDatabase('calllimits');
    await migrate(db.url);
    const sfu = startNode('sfu', { ...env(), SFU_WORKERS: '1', SFU_PORT_BASE: String(await freePortBase(1)) });
    sig = await startNode('signaling', env());
    procs.push(sig, await sfu);
  });

  afterAll(async () => {
    for (const p of peers) p.close();
    for (const c of clients) c.ws.terminate();
    await Promise.all(procs.map((p) => p.kill('SIGKILL')));
    await clearPrefix(prefix);
    await db.drop();
  });

  it('refuses a participant that piles up consumers, transports and devices with clear errors, while a bystander’s call still starts', async () => {
    const aliceWallet = Wallet.createRandom();
    const alice = await user(aliceWallet);
    const aliceTab = await user(aliceWallet);
    const bob = await user();
    const { callId } = await alice.request('call.start', { to: [bob.address], kind: 'audio' });
    await bob.request('call.accept', { callId });
    const pb = peer(bob, callId);
    await pb.start();
    const mic = await pb.produce('audio');
    const pa = peer(alice, callId);
    await pa.start();
    await pa.consume({ producerId: mic.id, kind: 'audio' });
    const consume = (c: TestClient, transportId: string) => c.request('call.consume', { callId, transportId, producerId: mic.id, rtpCapabilities: pa.device.rtpCapabilities as unknown as Record<string, unknown> });

    // The same producer again: refused, naming the consumer it already has.
    await expect(consume(alice, pa.recv.id)).rejects.toMatchObject({ body: { code: 'MEDIA_DUPLICATE' } });
    // Send + receive + one more (screen share); a fourth transport is refused.
    expect(await code(alice.request('call.createTransport', { callId, direction: 'send' }))).toBe('ok');
    const fourth = await alice.request('call.createTransport', { callId, direction: 'recv' }).catch((e: RequestError) => e.body);
    expect(fourth).toMatchObject({ code: 'MEDIA_LIMIT', message: expect.stringContaining('transports') });

    // Another tab of Alice joins: it replaces her media peer (Bob sees the old one leave) ...
    const tab = await aliceTab.request('call.join', { callId, device: 'tab2' });
    await bob.waitFor('call.peerLeft', (e) => e.peerId === pa.join.peerId);
    const t = await aliceTab.request('call.createTransport', { callId, direction: 'recv' });
    expect(await code(consume(aliceTab, t.id))).toBe('ok');
    // ... and the first tab is told it was taken over (not to join again).
    expect(await code(alice.request('call.createTransport', { callId, direction: 'recv' }))).toBe('MEDIA_REPLACED');

    // Churning through new device names: each replaces the last; the fifth device is refused.
    const outcomes: string[] = [];
    for (const device of ['evil1', 'evil2', 'evil3']) {
      outcomes.push(await code(alice.request('call.join', { callId, device })));
      const r = await alice.request('call.createTransport', { callId, direction: 'recv' });
      outcomes.push(await code(consume(alice, r.id)));
      outcomes.push(await code(consume(alice, r.id)));
    }
    // (join, consume, consume again) per device; after the refused join, Alice is still on evil2.
    expect(outcomes).toEqual(['ok', 'ok', 'MEDIA_DUPLICATE', 'ok', 'ok', 'MEDIA_DUPLICATE', 'MEDIA_LIMIT', 'MEDIA_DUPLICATE', 'MEDIA_DUPLICATE']);
    expect(tab.peerId).not.toBe(pa.join.peerId);
    // No ghost peers: Bob sees exactly one media peer of Alice's at a time.
    await bob.waitFor('call.peerJoined', (e) => e.peerId === `${alice.address}:evil2`);
    await bob.waitFor('call.peerLeft', (e) => e.peerId === `${alice.address}:evil1`);
    const joined = bob.eventsOf('call.peerJoined').filter((e) => e.callId === callId && e.address === alice.address).length;
    const left = bob.eventsOf('call.peerLeft').filter((e) => e.callId === callId && e.address === alice.address).length;
    expect(joined - left).toBe(1);

    // The worker is not full (3 consumers): a bystander's call is placed and gets media.
    await new Promise((r) => setTimeout(r, 1500)); // a heartbeat or two
    const carol = await user();
    const dave = await user();
    const other = await carol.request('call.start', { to: [dave.address], kind: 'audio' });
    expect(other.callId).toBeTruthy();
    await dave.request('call.accept', { callId: other.callId });
    const pd = peer(dave, other.callId);
    await pd.start();
    expect(pd.join.peerId).toContain(dave.address);
  });

  it('rate-limits call.start per user and rings a callee for at most CALL_MAX_RINGING_PER_CALLEE calls at once', async () => {
    const mallory = await user();
    const victim = await user();
    // 30 calls within a second to the same person.
    const results = await Promise.all(Array.from({ length: 30 }, () => mallory.request('call.start', { to: [victim.address], kind: 'audio' }).catch((e: RequestError) => e.body)));
    type Started = Exclude<(typeof results)[number], { code: string }>;
    const started = results.filter((r): r is Started => 'callId' in r);
    const limited = results.filter((r) => 'code' in r && r.code === 'RATE_LIMITED');
    expect(started.length).toBeLessThanOrEqual(10);
    expect(started.length + limited.length).toBe(30);
    expect(limited[0]).toMatchObject({ retryAfterMs: expect.any(Number) });
    // Two ring; the rest find the callee busy and end at once.
    const rung = started.filter((s) => s.participants.find((p) => p.address === victim.address)?.state === 'ringing');
    expect(rung).toHaveLength(2);
    await new Promise((r) => setTimeout(r, 500));
    expect(victim.eventsOf('call.incoming')).toHaveLength(2);
    const busy = started.find((s) => !rung.includes(s))!;
    expect((await mallory.waitFor('call.ended', (e) => e.callId === busy.callId)).reason).toBe('busy');
  });

  it('refuses a caller with more than CALL_MAX_RINGING_PER_CALLER calls ringing until one is cancelled', async () => {
    const caller = await user();
    const callees = await Promise.all([user(), user(), user(), user()]);
    const calls = [];
    for (const c of callees.slice(0, 3)) calls.push(await caller.request('call.start', { to: [c.address], kind: 'audio' }));
    const refused = await caller.request('call.start', { to: [callees[3]!.address], kind: 'audio' }).catch((e: RequestError) => e.body);
    expect(refused).toMatchObject({ code: 'CALL_RINGING_LIMIT', message: expect.stringContaining('3') });
    expect(callees[3]!.eventsOf('call.incoming')).toHaveLength(0);
    await caller.request('call.cancel', { callId: calls[0]!.callId });
    expect(await code(caller.request('call.start', { to: [callees[3]!.address], kind: 'audio' }))).toBe('ok');
  });

  it('hands TURN credentials only to joined participants of a live call, with a bounded lifetime that call.turnCredentials renews', async () => {
    const wallet = Wallet.createRandom();
    const erin = await user(wallet);
    const erinPhone = await user(wallet);
    const frank = await user();
    const stranger = await user();
    const started = await erin.request('call.start', { to: [frank.address], kind: 'audio' });
    // call.start hands out no credentials.
    expect(Object.keys(started).sort()).toEqual(['callId', 'participants']);
    const { callId } = started;
    const renew = (c: TestClient, id = callId) => c.request('call.turnCredentials', { callId: id });
    // Not joined yet (invitee), another device, a stranger: no credentials.
    expect(await code(renew(frank))).toBe('NOT_IN_CALL');
    expect(await code(renew(stranger))).toBe('NOT_IN_CALL');

    const now = Math.floor(Date.now() / 1000);
    const joined = await erin.request('call.join', { callId, device: 'laptop' });
    const [ice] = joined.iceServers;
    expect(ice).toMatchObject({ urls: ['turn:127.0.0.1:3478'], username: expect.stringMatching(new RegExp(`^\\d+:${erin.address}$`)) });
    expect(expiry(ice!.username)).toBeGreaterThanOrEqual(now + TURN_TTL - 2);
    expect(expiry(ice!.username)).toBeLessThanOrEqual(now + TURN_TTL + 5);
    expect(await code(renew(erinPhone))).toBe('NOT_IN_CALL');

    await new Promise((r) => setTimeout(r, 1100));
    const fresh = await renew(erin);
    expect(fresh.iceServers).toHaveLength(1);
    expect(expiry(fresh.iceServers[0]!.username)).toBeGreaterThan(expiry(ice!.username));
    expect(fresh.iceServers[0]!.credential).not.toBe(ice!.credential);
    expect(await code(erin.request('call.turnCredentials', { callId: 'not-a-uuid' }))).toBe('INVALID_FIELDS');

    // Once the call is over, nobody gets credentials for it.
    await erin.request('call.cancel', { callId });
    await erin.waitFor('call.ended', (e) => e.callId === callId);
    expect(await code(renew(erin))).toBe('CALL_ENDED');
  });
});
