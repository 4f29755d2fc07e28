import { Wallet } from 'ethers';
import { TestClient } from '../../testkit/client.ts';
import { MediaPeer, until } from '../../testkit/media-peer.ts';
import { migrate, startNode } from '../../testkit/node.ts';
import { createTestDatabase } from '../../testkit/pg.ts';
import { REDIS_URL, clearPrefix, testPrefix } from '../../testkit/redis.ts';
import { percentiles, type Percentiles } from './control-plane.ts';

export interface CallSetupResult {
  calls: number;
  /** call.join → transports created → producing → consumer resumed (both peers' consume done). */
  joinToConsumingMs: Percentiles;
  /** call.join → first RTP packet received by the other side through the SFU. */
  joinToFirstPacketMs: Percentiles;
}

/**
 * The whole path with real processes — a signaling node and an SFU node on Redis and
 * PostgreSQL — and werift peers doing ICE/DTLS: one call at a time.
 */
export async function measureCallSetup(calls: number): Promise<CallSetupResult> {
  const db = await createTestDatabase('benchsfu');
  await migrate(db.url);
  const prefix = testPrefix('benchsfu');
  const env = { DATABASE_URL: db.url, REDIS_URL, REDIS_KEY_PREFIX: prefix, RATE_LIMIT_AUTH: '100000/60', RATE_LIMIT_CONNECT: '100000/60', WS_MAX_FRAMES_PER_SECOND: '1000', RATE_LIMIT_CALLS: '100000/60', CALL_MAX_RINGING_PER_CALLER: '100000', CALL_MAX_RINGING_PER_CALLEE: '100000' };
  const [sig, sfu] = await Promise.all([startNode('signaling', env, 600_000), startNode('sfu', { ...env, SFU_WORKERS: '1', SFU_PORT_BASE: String(47000 + Math.floor(Math.random() * 900)) }, 600_000)]);
  const consuming: number[] = [];
  const firstPacket: number[] = [];
  try {
    for (let i = 0; i < calls; i++) {
      const a = await TestClient.signInAndConnect(sig.url, Wallet.createRandom());
      const b = await TestClient.signInAndConnect(sig.url, Wallet.createRandom());
      const { callId } = await a.request('call.start', { to: [b.address], kind: 'audio' });
      await b.request('call.accept', { callId });
      const pa = new MediaPeer(a, callId);
      const pb = new MediaPeer(b, callId);
      const t0 = performance.now();
      await Promise.all([pa.start(), pb.start()]);
      const [prodA, prodB] = await Promise.all([pa.produce('audio'), pb.produce('audio')]);
      await Promise.all([pb.consume({ producerId: prodA.id, kind: 'audio' }), pa.consume({ producerId: prodB.id, kind: 'audio' })]);
      consuming.push(performance.now() - t0);
      await until(() => pb.packetsFrom(prodA.id) > 0 && pa.packetsFrom(prodB.id) > 0, 15_000, 'first packets');
      firstPacket.push(performance.now() - t0);
      pa.close();
      pb.close();
      await a.request('call.leave', { callId }).catch(() => undefined);
      await b.request('call.leave', { callId }).catch(() => undefined);
      await Promise.all([a.close(), b.close()]);
    }
  } finally {
    await Promise.all([sig.kill('SIGKILL'), sfu.kill('SIGKILL')]);
    await clearPrefix(prefix);
    await db.drop();
  }
  return { calls, joinToConsumingMs: percentiles(consuming), joinToFirstPacketMs: percentiles(firstPacket) };
}
