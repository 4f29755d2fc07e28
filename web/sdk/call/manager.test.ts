import { beforeEach, describe, expect, it, vi } from 'vitest';
import { Engine } from '../engine.ts';
import type { ReconnectContext } from '../signal.ts';
import { MemoryStore, writeJson } from '../storage.ts';
import { FakeSocket, settle, type SentFrame } from '../test-support/fake-socket.ts';
import { CallManager } from './manager.ts';
import type { CallSession } from './session.ts';

// A lost answer shows up as a hung promise: fail fast instead of at the suite's long default.
vi.setConfig({ testTimeout: 5_000 });

const ME = '0x1111111111111111111111111111111111111111';
const PEER = '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed';
const CALL = '6f1c2f3e-0000-4000-8000-000000000001';

async function connectedManager(retry: ConstructorParameters<typeof CallManager>[1] = {}) {
  const storage = new MemoryStore();
  writeJson(storage, 'blockrtc.session.v1', { address: ME, token: 'tok', expiresAt: Date.now() + 3_600_000 });
  const engine = new Engine({ baseUrl: 'http://test', storage, tabStorage: new MemoryStore(), WebSocketImpl: FakeSocket.impl });
  engine.resume();
  const calls = new CallManager(engine, retry);
  const done = engine.connect();
  await settle();
  const ws = FakeSocket.last;
  ws.open({ address: ME });
  await done;
  return { engine, calls, ws };
}

const incoming = { callId: CALL, from: PEER, kind: 'video' as const, participants: [PEER, ME], expiresAt: new Date(Date.now() + 30_000).toISOString() };

beforeEach(() => FakeSocket.reset());

describe('CallManager ringing', () => {
  it('lists an incoming call until it is answered elsewhere', async () => {
    const { calls, ws } = await connectedManager();
    const onIncoming = vi.fn();
    const onEnded = vi.fn();
    calls.on('incoming', onIncoming);
    calls.on('incoming-ended', onEnded);
    ws.event('call.incoming', incoming);
    expect(onIncoming).toHaveBeenCalledWith(incoming);
    expect(calls.incomingCalls).toEqual([incoming]);

    // Another tab of mine accepted it.
    ws.event('call.participant', { callId: CALL, address: ME, state: 'accepted' });
    expect(onEnded).toHaveBeenCalledWith({ callId: CALL, reason: 'accepted' });
    expect(calls.incomingCalls).toEqual([]);
  });

  it('stops ringing when the call ends, and on reject (which tells the server)', async () => {
    const { calls, ws } = await connectedManager();
    const onEnded = vi.fn();
    calls.on('incoming-ended', onEnded);
    ws.event('call.incoming', incoming);
    ws.event('call.ended', { callId: CALL, reason: 'cancelled' });
    expect(onEnded).toHaveBeenLastCalledWith({ callId: CALL, reason: 'cancelled' });

    ws.event('call.incoming', { ...incoming, callId: 'other' });
    const rejecting = calls.reject('other');
    expect(calls.incomingCalls).toEqual([]);
    const req = ws.request('call.reject');
    expect(req.callId).toBe('other');
    ws.reply(req.id);
    await rejecting;
    expect(onEnded).toHaveBeenLastCalledWith({ callId: 'other', reason: 'rejected' });
  });
});

describe('CallManager start', () => {
  it('normalises the callees, and cancels the call when joining fails for good', async () => {
    const policy = { calls: [] as ReconnectContext[], nextRetryDelayInMs(c: ReconnectContext) { this.calls.push(c); return c.attempt < 2 ? 0 : null; } };
    const { calls, ws } = await connectedManager({ join: policy });
    ws.responder = (f: SentFrame, s) => {
      if (f.type === 'call.start') s.reply(f.id, { callId: CALL, participants: [] });
      else if (f.type === 'call.join') s.fail(f.id, 'MEDIA_UNAVAILABLE', 'no media node');
      else s.reply(f.id);
    };
    const sessions: CallSession[] = [];
    calls.on('session', (s) => sessions.push(s));
    const ended = vi.fn();
    calls.on('session-ended', ended);

    await expect(calls.start(PEER.toLowerCase(), 'audio', { audio: false })).rejects.toMatchObject({ code: 'MEDIA_UNAVAILABLE' });
    expect(ws.request('call.start')).toMatchObject({ to: [PEER], kind: 'audio' });
    expect(ws.requests('call.join')).toHaveLength(2);
    expect(policy.calls.map((c) => c.attempt)).toEqual([1, 2]);
    expect(ws.request('call.cancel')).toMatchObject({ callId: CALL });
    expect(sessions).toHaveLength(1);
    expect(ended).toHaveBeenCalledWith({ session: sessions[0], reason: 'left' });
    expect(calls.current).toBeNull();
  });

  it('rejects a callee that is not an address before asking the server', async () => {
    const { calls, ws } = await connectedManager();
    await expect(calls.start(['nobody'], 'video')).rejects.toMatchObject({ code: 'INVALID_FIELDS' });
    expect(ws.sent).toEqual([]);
  });

  it('passes a server refusal of call.start through', async () => {
    const { calls, ws } = await connectedManager();
    ws.responder = (f, s) => s.fail(f.id, 'RATE_LIMITED', 'too many calls');
    await expect(calls.start(PEER, 'video')).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    expect(calls.current).toBeNull();
  });
});
