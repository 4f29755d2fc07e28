/**
 * The call mix of one worker: C calls of P participants each (its own users), placed a few
 * at a time at the start of the mix. The first participant calls the others, who accept
 * when rung; everyone joins with a WebRTC peer, sends, and consumes every other track. A
 * call is up when each participant receives from every other one; its setup time runs from
 * `call.start` to that moment. At the end everyone stops sending, the receive figures are
 * taken, and the participants leave.
 */
import type { MixSettings, SubscriberStats } from './ipc.ts';
import { MediaPeer } from './media-peer.ts';
import { counters, countError, hists, nowMs } from './state.ts';
import type { User, Users } from './users.ts';

const SETUP_TIMEOUT_MS = 20_000;
/** Calls started per second by one worker (each peer's ICE/DTLS handshakes cost CPU). */
const CALLS_PER_SECOND = 5;

interface Call {
  id: number;
  users: User[];
  callId: string | null;
  startedAt: number;
  peers: Map<User, MediaPeer>;
  up: boolean;
  failed: boolean;
}

export class CallMix {
  private readonly calls: Call[];
  /** Set when the run ends: what our own cleanup breaks is not an error. */
  private stopping = false;

  constructor(
    users: Users,
    plan: { id: number; users: number[] }[],
    private readonly mix: MixSettings,
  ) {
    this.calls = plan.map((c) => ({ id: c.id, users: c.users.map((i) => users.byIndex.get(i)!), callId: null, startedAt: 0, peers: new Map(), up: false, failed: false }));
    for (const call of this.calls) {
      const [caller, ...invitees] = call.users;
      for (const u of call.users) u.inCall = true;
      for (const u of invitees) {
        u.handlers['call.incoming'] = (me, e) => {
          if (e.from.toLowerCase() !== caller!.address.toLowerCase() || call.failed) return;
          call.callId = e.callId;
          void this.answer(call, me, e.callId);
        };
      }
      for (const u of call.users) {
        u.handlers['call.producer'] = (me, e) => {
          const peer = call.peers.get(me);
          if (peer && e.callId === peer.callId) peer.consume(e).catch((err: unknown) => this.fail(call, 'call.consume', err));
        };
      }
    }
  }

  /** Starts the calls (spread at CALLS_PER_SECOND); resolves when each is up or has failed. */
  async start(budgetMs: number): Promise<void> {
    const timeout = Math.min(SETUP_TIMEOUT_MS, Math.max(5000, budgetMs));
    await Promise.all(
      this.calls.map(async (call, k) => {
        await new Promise((r) => setTimeout(r, (k * 1000) / CALLS_PER_SECOND));
        await this.place(call);
        const until = nowMs() + timeout;
        while (!call.up && !call.failed && nowMs() < until) await new Promise((r) => setTimeout(r, 50));
        if (!call.up && !call.failed) this.fail(call, 'call.setup', { code: 'SETUP_TIMEOUT' });
      }),
    );
  }

  private async place(call: Call): Promise<void> {
    const [caller, ...invitees] = call.users;
    if (!caller!.conn || invitees.some((u) => !u.conn)) return this.fail(call, 'call.start', { code: 'PARTICIPANT_OFFLINE' });
    call.startedAt = nowMs();
    try {
      const r = await caller!.conn.request('call.start', { to: invitees.map((u) => u.address), kind: this.mix.video ? 'video' : 'audio' });
      call.callId = r.callId;
      await this.joinMedia(call, caller!, r.callId);
    } catch (err) {
      this.fail(call, 'call.start', err);
    }
  }

  private async answer(call: Call, u: User, callId: string): Promise<void> {
    try {
      await u.conn!.request('call.accept', { callId });
      await this.joinMedia(call, u, callId);
    } catch (err) {
      this.fail(call, 'call.accept', err);
    }
  }

  private async joinMedia(call: Call, u: User, callId: string): Promise<void> {
    if (!u.conn) throw Object.assign(new Error('offline'), { code: 'PARTICIPANT_OFFLINE' });
    const peer = new MediaPeer(u.conn, callId, `lt${u.index}`);
    call.peers.set(u, peer);
    const tracksEach = this.mix.video ? 2 : 1;
    peer.onFirstPacket = () => {
      hists.firstMediaMs.add(nowMs() - call.startedAt);
      const want = (call.users.length - 1) * tracksEach;
      const everyone = call.users.every((x) => {
        const p = call.peers.get(x);
        return p !== undefined && [...p.tracks.values()].filter((t) => t.packets > 0).length >= want;
      });
      if (everyone && !call.up && !call.failed) {
        call.up = true;
        counters.callsUp++;
        hists.callSetupMs.add(nowMs() - call.startedAt);
      }
    };
    const join = await peer.start();
    await peer.produceAll(this.mix);
    for (const p of join.producers) await peer.consume(p);
  }

  private fail(call: Call, op: string, err: unknown): void {
    if (this.stopping) return;
    countError(op, err);
    if (call.failed || call.up) return;
    call.failed = true;
    counters.callsFailed++;
  }

  /** Stops sending, waits for packets in flight, takes the figures, leaves every call. */
  async stop(): Promise<SubscriberStats[]> {
    this.stopping = true;
    for (const call of this.calls) for (const p of call.peers.values()) p.stopSending();
    await new Promise((r) => setTimeout(r, 300));
    const out: SubscriberStats[] = [];
    for (const call of this.calls) {
      for (const [u, peer] of call.peers) {
        for (const t of peer.tracks.values()) {
          const expected = t.expected;
          const lost = Math.max(0, expected - t.packets);
          out.push({
            call: call.id,
            subscriber: u.address,
            from: t.from,
            kind: t.kind,
            packets: t.packets,
            expected,
            lost,
            lossPct: expected ? Math.round((lost / expected) * 10_000) / 100 : 0,
            jitterMs: Math.round(t.jitterMs * 100) / 100,
            kbps: t.seconds > 0 ? Math.round((t.bytes * 8) / t.seconds / 10) / 100 : 0,
            bytes: t.bytes,
            seconds: Math.round(t.seconds * 100) / 100,
          });
        }
      }
    }
    await Promise.all(
      this.calls.flatMap((call) =>
        [...call.peers].map(async ([u, peer]) => {
          try {
            if (u.conn) await u.conn.request('call.leave', { callId: peer.callId }, 5000);
            counters.participantsLeft++;
          } catch (err) {
            // A participant stopped before its join went through has nothing to leave.
            if ((err as { code?: string }).code !== 'NOT_IN_CALL' || call.up) countError('call.leave', err);
          }
          peer.close();
        }),
      ),
    );
    return out;
  }
}
