import { Wallet } from 'ethers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RequestError, TestClient } from '../testkit/client.ts';
import { MediaPeer, until } from '../testkit/media-peer.ts';
import { migrate, startNode, type NodeProcess } from '../testkit/node.ts';
import { freePortBase } from '../testkit/ports.ts';
import { createTestDatabase, query } from '../testkit/pg.ts';
import { REDIS_URL, clearPrefix, testPrefix } from '../testkit/redis.ts';

/**
 * Calls through the scaled-out shape: two signaling nodes, two SFU nodes (real mediasoup
 * workers), real PostgreSQL and Redis, and real WebRTC peers (werift) on both ends.
 */
describe('calls across signaling and SFU nodes', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  const prefix = testPrefix('calls');
  const procs: NodeProcess[] = [];
  const clients: TestClient[] = [];
  const peers: MediaPeer[] = [];
  let a: NodeProcess;
  let b: NodeProcess;

  const common = () => ({
    DATABASE_URL: db.url,
    REDIS_URL,
    REDIS_KEY_PREFIX: prefix,
    RATE_LIMIT_AUTH: '10000/60',
    RATE_LIMIT_CONNECT: '10000/60',
    WS_MAX_FRAMES_PER_SECOND: '500',
    PRESENCE_HEARTBEAT_MS: '1000',
    PRESENCE_STALE_MS: '3000',
    CALL_RING_TIMEOUT_MS: '3000',
    SFU_COMMAND_TIMEOUT_MS: '3000',
  });
  const sfu = async (extra: Record<string, string> = {}) => {
    const n = await startNode('sfu', { ...common(), SFU_WORKERS: '2', SFU_PORT_BASE: String(await freePortBase(2)), ...extra });
    procs.push(n);
    return n;
  };
  const user = async (node: NodeProcess, wallet = Wallet.createRandom()) => {
    const c = await TestClient.signInAndConnect(node.url, wallet);
    clients.push(c);
    return c;
  };
  const peer = (c: TestClient, callId: string) => {
    const p = new MediaPeer(c, callId);
    peers.push(p);
    return p;
  };

  beforeAll(async () => {
    db = await createTestDatabase('calls');
    await migrate(db.url);
    const sfuNodes = [sfu(), sfu()];
    [a, b] = await Promise.all([startNode('signaling', common()), startNode('signaling', common())]);
    procs.push(a, b);
    await Promise.all(sfuNodes);
  });

  afterAll(async () => {
    for (const p of peers) p.close();
    for (const c of clients) c.ws.terminate();
    await Promise.all(procs.map((p) => p.kill('SIGKILL')));
    await clearPrefix(prefix);
    await db.drop();
  });

  it('rings every device, accepts on one, carries audio and video both ways over DTLS/SRTP, and records the call', async () => {
    const alice = await user(a);
    const bobWallet = Wallet.createRandom();
    const bob = await user(b, bobWallet);
    const bobPhone = await user(a, bobWallet);

    const { callId } = await alice.request('call.start', { to: [bob.address], kind: 'video' });
    await bob.waitFor('call.incoming', (e) => e.callId === callId);
    await bobPhone.waitFor('call.incoming', (e) => e.callId === callId);
    await bob.request('call.accept', { callId });
    await bobPhone.waitFor('call.participant', (e) => e.callId === callId && e.state === 'accepted');
    await expect(bobPhone.request('call.accept', { callId })).rejects.toMatchObject({ body: { code: 'CALL_STATE' } });

    const pa = peer(alice, callId);
    const pb = peer(bob, callId);
    await pa.start();
    await pb.start();
    const [aAudio, aVideo] = [await pa.produce('audio'), await pa.produce('video')];
    const [bAudio, bVideo] = [await pb.produce('audio'), await pb.produce('video')];
    // Each side learns of the other's producers as events.
    await bob.waitFor('call.producer', (e) => e.producerId === aVideo.id);
    await alice.waitFor('call.producer', (e) => e.producerId === bVideo.id);
    for (const p of [aAudio, aVideo]) await pb.consume({ producerId: p.id, kind: p.kind as 'audio' | 'video' });
    for (const p of [bAudio, bVideo]) await pa.consume({ producerId: p.id, kind: p.kind as 'audio' | 'video' });

    await until(() => [aAudio, aVideo].every((p) => pb.packetsFrom(p.id) > 10) && [bAudio, bVideo].every((p) => pa.packetsFrom(p.id) > 10), 15_000, 'media both ways');
    const before = pb.packetsFrom(aAudio.id);
    await new Promise((r) => setTimeout(r, 1000));
    expect(pb.packetsFrom(aAudio.id)).toBeGreaterThan(before + 20);

    // Mute is seen by the other side.
    await alice.request('call.pauseProducer', { callId, producerId: aAudio.id, paused: true });
    await bob.waitFor('call.producerState', (e) => e.producerId === aAudio.id && e.paused);
    // Producers are owned: bob cannot mute alice.
    await expect(bob.request('call.pauseProducer', { callId, producerId: aVideo.id, paused: true })).rejects.toMatchObject({ body: { code: 'FORBIDDEN' } });
    const ice = await alice.request('call.restartIce', { callId, transportId: pa.send.id });
    expect(ice.iceParameters).toHaveProperty('usernameFragment');

    await alice.request('call.leave', { callId });
    await bob.request('call.leave', { callId });
    const ended = await alice.waitFor('call.ended', (e) => e.callId === callId);
    expect(ended.reason).toBe('completed');

    const [call] = await query<{ kind: string; answered_at: Date; ended_at: Date; end_reason: string; sfu_node: string }>(db.url, 'select * from calls where id = $1', [callId]);
    expect(call).toMatchObject({ kind: 'video', end_reason: 'completed' });
    expect(call!.answered_at).not.toBeNull();
    expect(call!.sfu_node).toBeTruthy();
    const parts = await query<{ address: string; state: string; joined_at: Date; left_at: Date; device: string }>(db.url, 'select * from call_participants where call_id = $1 order by role', [callId]);
    expect(parts.map((p) => [p.address, p.state])).toEqual([
      [alice.address, 'left'],
      [bob.address, 'left'],
    ]);
    for (const p of parts) expect(p.left_at.getTime()).toBeGreaterThanOrEqual(p.joined_at.getTime());
    const history = await bob.request('call.history', {});
    expect(history.calls[0]).toMatchObject({ callId, endReason: 'completed' });
  });

  it('ends calls that are rejected, cancelled, missed, or reach a busy callee', async () => {
    const carol = await user(a);
    const dave = await user(b);
    const r = await carol.request('call.start', { to: [dave.address], kind: 'audio' });
    await dave.waitFor('call.incoming', (e) => e.callId === r.callId);
    await dave.request('call.reject', { callId: r.callId });
    expect((await carol.waitFor('call.ended', (e) => e.callId === r.callId)).reason).toBe('rejected');

    const c = await carol.request('call.start', { to: [dave.address], kind: 'audio' });
    await dave.waitFor('call.incoming', (e) => e.callId === c.callId);
    await carol.request('call.cancel', { callId: c.callId });
    expect((await dave.waitFor('call.ended', (e) => e.callId === c.callId)).reason).toBe('cancelled');

    const m = await carol.request('call.start', { to: [dave.address], kind: 'audio' });
    expect((await carol.waitFor('call.ended', (e) => e.callId === m.callId, 8000)).reason).toBe('missed');
    const [missed] = await query<{ state: string }>(db.url, 'select state from call_participants where call_id = $1 and address = $2', [m.callId, dave.address]);
    expect(missed!.state).toBe('missed');

    // Dave joins a call with Erin; Carol then finds him busy.
    const erin = await user(a);
    const busyCall = await erin.request('call.start', { to: [dave.address], kind: 'audio' });
    const pd = peer(dave, busyCall.callId);
    await pd.start();
    const x = await carol.request('call.start', { to: [dave.address], kind: 'audio' });
    expect(x.participants.find((p) => p.address === dave.address)?.state).toBe('busy');
    expect((await carol.waitFor('call.ended', (e) => e.callId === x.callId)).reason).toBe('busy');
    await dave.request('call.leave', { callId: busyCall.callId });
  });

  it('replaces a participant’s media session when another of its devices joins through another node', async () => {
    const hanaWallet = Wallet.createRandom();
    const hanaLaptop = await user(a, hanaWallet);
    const hanaPhone = await user(b, hanaWallet);
    const ivan = await user(b);
    const { callId } = await hanaLaptop.request('call.start', { to: [ivan.address], kind: 'audio' });
    await ivan.request('call.accept', { callId });
    const pi = peer(ivan, callId);
    const ph = peer(hanaLaptop, callId);
    await pi.start();
    await ph.start();
    const mic = await ph.produce('audio');
    await ivan.waitFor('call.producer', (e) => e.producerId === mic.id);
    await pi.consume({ producerId: mic.id, kind: 'audio' });

    const phone = await hanaPhone.request('call.join', { callId, device: 'phone' });
    // Ivan sees the laptop's media peer leave and its producer close; the phone's peer join.
    await ivan.waitFor('call.peerLeft', (e) => e.peerId === ph.join.peerId);
    await ivan.waitFor('call.producerClosed', (e) => e.producerId === mic.id);
    await ivan.waitFor('call.peerJoined', (e) => e.peerId === phone.peerId);
    // The laptop is told its session was taken over; it is not sent to rejoin.
    await expect(hanaLaptop.request('call.createTransport', { callId, direction: 'send' })).rejects.toMatchObject({ body: { code: 'MEDIA_REPLACED' } });
    const stats = await ivan.request('call.history', {});
    expect(stats.calls[0]?.participants.find((p) => p.address === hanaPhone.address)?.state).toBe('joined');
    await hanaPhone.request('call.leave', { callId });
    await ivan.request('call.leave', { callId });
    expect((await ivan.waitFor('call.ended', (e) => e.callId === callId)).reason).toBe('completed');
  });

  it('refuses strangers and media requests outside a joined call', async () => {
    const frank = await user(a);
    const gina = await user(b);
    const stranger = await user(b);
    const { callId } = await frank.request('call.start', { to: [gina.address], kind: 'audio' });
    const code = (p: Promise<unknown>) => p.then(() => 'ok', (e: unknown) => (e instanceof RequestError ? e.body.code : String(e)));
    expect(await code(stranger.request('call.join', { callId, device: 'x1' }))).toBe('CALL_NOT_ALLOWED');
    expect(await code(stranger.request('call.accept', { callId }))).toBe('CALL_NOT_ALLOWED');
    expect(await code(gina.request('call.createTransport', { callId, direction: 'send' }))).toBe('NOT_IN_CALL');
    expect(await code(gina.request('call.cancel', { callId }))).toBe('CALL_NOT_ALLOWED');
    expect(await code(frank.request('call.join', { callId: '00000000-0000-4000-8000-000000000000', device: 'x1' }))).toBe('CALL_NOT_FOUND');
    expect(await code(frank.request('call.start', { to: [frank.address], kind: 'audio' }))).toBe('BAD_REQUEST');
    expect(await code(frank.request('call.start', { to: [gina.address], kind: 'hologram' as 'audio' }))).toBe('INVALID_FIELDS');
    const pf = peer(frank, callId);
    await pf.start();
    expect(await code(frank.request('call.consume', { callId, transportId: pf.recv.id, producerId: '00000000-0000-4000-8000-000000000000', rtpCapabilities: {} }))).toBe('NOT_FOUND');
    expect(await code(frank.request('call.produce', { callId, transportId: pf.recv.id, kind: 'audio', rtpParameters: {}, source: 'mic' }))).toBe('MEDIA_REJECTED');
    await frank.request('call.cancel', { callId });
  });
});
