import { afterEach, describe, expect, it, vi } from 'vitest';
import type { CallParticipant, JoinResult } from '../../../protocol/index.ts';
import type { Engine } from '../engine.ts';
import { BlockRtcClientError } from '../errors.ts';
import type { ReconnectContext, ReconnectPolicy, SignalState } from '../signal.ts';
import { CallSession } from './session.ts';
import type { CallState } from './types.ts';

// A lost answer shows up as a hung promise: fail fast instead of at the suite's long default.
vi.setConfig({ testTimeout: 5_000 });

const ME = '0x1111111111111111111111111111111111111111';
const PEER = '0x2222222222222222222222222222222222222222';
const CALL = '6f1c2f3e-0000-4000-8000-000000000001';

type Handler = (type: string, payload: Record<string, unknown>) => Promise<unknown>;

/** The two things a session uses from the engine: signal.request/state, address and deviceId. */
function fakeEngine(handler: Handler, state: SignalState = 'open') {
  const request = vi.fn((type: string, payload: Record<string, unknown>) => handler(type, payload));
  const engine = { signal: { request, state }, address: ME, deviceId: 'dev1' } as unknown as Engine;
  return { engine, request, types: () => request.mock.calls.map((c) => c[0]) };
}

function recording(delays: (number | null)[]): ReconnectPolicy & { calls: ReconnectContext[] } {
  const calls: ReconnectContext[] = [];
  return {
    calls,
    nextRetryDelayInMs(ctx) {
      calls.push(ctx);
      return delays.length ? delays.shift()! : null;
    },
  };
}

const participants = (peerState: CallParticipant['state'] = 'joined'): CallParticipant[] => [
  { address: ME, role: 'initiator', state: 'joined', joinedAt: null, leftAt: null },
  { address: PEER, role: 'invitee', state: peerState, joinedAt: null, leftAt: null },
];

const joinAnswer: JoinResult = { callId: CALL, peerId: `${ME}:dev1`, rtpCapabilities: { codecs: [] }, iceServers: [], producers: [], participants: participants() };

function session(engine: Engine, policies: { join?: ReconnectPolicy; rejoin?: ReconnectPolicy } = {}, initial: CallState = 'joining', peerState: CallParticipant['state'] = 'joined') {
  // No capture: audio and video off, so no media devices are needed.
  return new CallSession(engine, CALL, 'audio', PEER, { audio: false, video: false }, participants(peerState), initial, policies);
}

const err = (code: string) => new BlockRtcClientError(code as never, code);

afterEach(() => vi.useRealTimers());

describe('CallSession join retries', () => {
  it('retries a busy media node as the join policy says, then gives up with the last error', async () => {
    const { engine, types } = fakeEngine(async () => Promise.reject(err('MEDIA_UNAVAILABLE')));
    const policy = recording([0, 0, null]);
    await expect(session(engine, { join: policy }).join()).rejects.toMatchObject({ code: 'MEDIA_UNAVAILABLE' });
    expect(types()).toEqual(['call.join', 'call.join', 'call.join']);
    expect(policy.calls.map((c) => [c.attempt, c.closeReason])).toEqual([
      [1, 'MEDIA_UNAVAILABLE'],
      [2, 'MEDIA_UNAVAILABLE'],
      [3, 'MEDIA_UNAVAILABLE'],
    ]);
  });

  it('does not retry an error that another try cannot fix', async () => {
    const { engine, types } = fakeEngine(async () => Promise.reject(err('CALL_NOT_ALLOWED')));
    const policy = recording([0, 0]);
    await expect(session(engine, { join: policy }).join()).rejects.toMatchObject({ code: 'CALL_NOT_ALLOWED' });
    expect(types()).toEqual(['call.join']);
    expect(policy.calls).toHaveLength(0);
  });

  it('sends the tab device id with the join', async () => {
    const { engine, request } = fakeEngine(async () => Promise.reject(err('CALL_STATE')));
    await session(engine).join().catch(() => undefined);
    expect(request.mock.calls[0]![1]).toEqual({ callId: CALL, device: 'dev1' });
  });

  it('refuses to join an ended call', async () => {
    const { engine, types } = fakeEngine(async () => ({}));
    const s = session(engine);
    s.handleEnded('cancelled');
    await expect(s.join()).rejects.toMatchObject({ code: 'CALL_ENDED' });
    expect(types()).toEqual([]);
  });
});

describe('CallSession rejoin', () => {
  /** A session whose first join got an answer (so it counts as joined); media setup itself fails outside a browser. */
  async function joined(after: Handler, rejoin?: ReconnectPolicy, state: SignalState = 'open') {
    let first = true;
    const fake = fakeEngine(async (type, payload) => {
      if (type === 'call.join' && first) {
        first = false;
        return joinAnswer;
      }
      return after(type, payload);
    }, state);
    const s = session(fake.engine, rejoin ? { rejoin } : {});
    await expect(s.join()).rejects.toThrow();
    expect(s.state).not.toBe('ended');
    return { s, ...fake };
  }

  it('asks the rejoin policy after each failure and ends the call as failed when it gives up', async () => {
    const policy = recording([0, 0, null]);
    const { s, types } = await joined(async () => Promise.reject(err('MEDIA_UNAVAILABLE')), policy);
    const seen: CallState[] = [];
    s.on('state', ({ state }) => seen.push(state));
    const ended = vi.fn();
    s.on('ended', ended);
    const rejoins = vi.fn();
    s.on('rejoin', rejoins);
    await s.rejoin('node lost');
    expect(rejoins).toHaveBeenCalledWith({ reason: 'node lost' });
    expect(policy.calls.map((c) => c.attempt)).toEqual([1, 2, 3]);
    expect(types().filter((t) => t === 'call.join')).toHaveLength(4);
    expect(seen).toEqual(['reconnecting', 'ended']);
    expect(ended).toHaveBeenCalledWith({ reason: 'failed' });
  });

  it('ends the call without retrying when the server says it is over', async () => {
    const policy = recording([0, 0]);
    const { s } = await joined(async () => Promise.reject(err('CALL_ENDED')), policy);
    const ended = vi.fn();
    s.on('ended', ended);
    await s.rejoin('call.rejoin');
    expect(policy.calls).toHaveLength(0);
    expect(ended).toHaveBeenCalledWith({ reason: 'ended' });
  });

  it('waits for the signaling connection instead of retrying while it is down', async () => {
    const policy = recording([0]);
    const { s, types } = await joined(async () => Promise.reject(err('MEDIA_UNAVAILABLE')), policy, 'reconnecting');
    await s.rejoin('signaling lost');
    expect(types()).toEqual(['call.join']);
    expect(s.state).toBe('reconnecting');
    expect(policy.calls).toHaveLength(0);
  });

  it('does nothing for a session that never joined', async () => {
    const { engine, types } = fakeEngine(async () => ({}));
    const s = session(engine);
    await s.rejoin('x');
    expect(types()).toEqual([]);
    expect(s.state).toBe('joining');
  });
});

describe('CallSession leave and participants', () => {
  it('cancels a call it never joined, and leaves one it did', async () => {
    const a = fakeEngine(async () => ({}));
    await session(a.engine).leave();
    expect(a.types()).toEqual(['call.cancel']);

    const b = fakeEngine(async (type) => (type === 'call.join' ? joinAnswer : {}));
    const s = session(b.engine);
    await s.join().catch(() => undefined);
    await s.leave();
    expect(b.types()).toEqual(['call.join', 'call.leave']);
    expect(s.state).toBe('ended');
    await s.leave();
    expect(b.types()).toHaveLength(2);
  });

  it('falls back to cancel when the server says we are not in the call', async () => {
    const { engine, types } = fakeEngine(async (type) => {
      if (type === 'call.join') return joinAnswer;
      if (type === 'call.leave') throw err('NOT_IN_CALL');
      return {};
    });
    const s = session(engine);
    await s.join().catch(() => undefined);
    await s.leave();
    expect(types()).toEqual(['call.join', 'call.leave', 'call.cancel']);
  });

  it('turns a ringing call into a connected one when someone joins', () => {
    const { engine } = fakeEngine(async () => ({}));
    const s = session(engine, {}, 'ringing', 'ringing');
    const onParticipants = vi.fn();
    s.on('participants', onParticipants);
    s.handleParticipant(PEER, 'joined');
    expect(s.state).toBe('connected');
    expect(s.startedAt).not.toBeNull();
    expect(onParticipants).toHaveBeenCalledWith(expect.arrayContaining([expect.objectContaining({ address: PEER, state: 'joined' })]));
  });

  it('leaves by itself shortly after everyone else has gone, unless someone comes back', async () => {
    vi.useFakeTimers();
    const { engine, types } = fakeEngine(async () => ({}));
    const s = session(engine, {}, 'connected');
    s.handleParticipant(PEER, 'left');
    await vi.advanceTimersByTimeAsync(1000);
    s.handleParticipant(PEER, 'joined');
    await vi.advanceTimersByTimeAsync(2000);
    expect(s.state).toBe('connected');

    s.handleParticipant(PEER, 'rejected');
    await vi.advanceTimersByTimeAsync(1499);
    expect(s.state).toBe('connected');
    await vi.advanceTimersByTimeAsync(1);
    expect(s.state).toBe('ended');
    expect(types()).toEqual(['call.cancel']);
  });

  it('stays when autoLeaveWhenAlone is off', async () => {
    vi.useFakeTimers();
    const { engine } = fakeEngine(async () => ({}));
    const s = new CallSession(engine, CALL, 'audio', PEER, { audio: false, video: false, autoLeaveWhenAlone: false }, participants(), 'connected');
    s.handleParticipant(PEER, 'left');
    await vi.advanceTimersByTimeAsync(5000);
    expect(s.state).toBe('connected');
  });

  it('a group call waits alone for the first member, then leaves once everyone has gone again', async () => {
    vi.useFakeTimers();
    const { engine, types } = fakeEngine(async () => ({}));
    const me: CallParticipant = { address: ME, role: 'initiator', state: 'joined', joinedAt: null, leftAt: null };
    const s = new CallSession(engine, CALL, 'audio', ME, { audio: false, video: false, waitForOthers: true }, [me], 'ringing', {}, 'group-1');
    expect(s.group).toBe('group-1');
    s.handleParticipant(ME, 'joined');
    await vi.advanceTimersByTimeAsync(10_000);
    expect(s.state).toBe('ringing');

    s.handleParticipant(PEER, 'joined');
    expect(s.state).toBe('connected');
    s.handleParticipant(PEER, 'left');
    await vi.advanceTimersByTimeAsync(1500);
    expect(s.state).toBe('ended');
    expect(types()).toEqual(['call.cancel']);
  });

  it('reports the active speaker', () => {
    const { engine } = fakeEngine(async () => ({}));
    const s = session(engine);
    const speaker = vi.fn();
    s.on('active-speaker', speaker);
    s.handleActiveSpeaker('peer-1', PEER);
    expect(s.activeSpeaker).toBe('peer-1');
    expect(speaker).toHaveBeenCalledWith({ peerId: 'peer-1', address: PEER });
  });
});
