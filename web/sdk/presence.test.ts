import { beforeEach, describe, expect, it, vi } from 'vitest';
import { Engine } from './engine.ts';
import { PresenceClient } from './presence.ts';
import { MemoryStore, writeJson } from './storage.ts';
import { FakeSocket, settle } from './test-support/fake-socket.ts';

vi.setConfig({ testTimeout: 5_000 });

const ME = '0x1111111111111111111111111111111111111111';
const PEER = '0x2222222222222222222222222222222222222222';
const STRANGER = '0x3333333333333333333333333333333333333333';

async function setup() {
  const storage = new MemoryStore();
  writeJson(storage, 'blockrtc.session.v1', { address: ME, token: 'tok', expiresAt: Date.now() + 3_600_000 });
  const engine = new Engine({ baseUrl: 'http://test', storage, tabStorage: new MemoryStore(), WebSocketImpl: FakeSocket.impl, reconnectPolicy: { nextRetryDelayInMs: () => 0 } });
  const presence = new PresenceClient(engine);
  engine.resume();
  const done = engine.connect();
  await settle();
  const ws = FakeSocket.last;
  ws.open({ address: ME });
  await done;
  await settle();
  return { presence, ws };
}

beforeEach(() => FakeSocket.reset());

describe('PresenceClient: unknown presence', () => {
  it('keeps online null from a query as unknown, distinct from offline and from not asked yet', async () => {
    const { presence, ws } = await setup();
    const q = presence.query([PEER, STRANGER]);
    await settle();
    ws.reply(ws.request('presence.query').id, {
      presence: [
        { address: PEER, online: false, lastSeen: '2026-01-01T00:00:00.000Z' },
        { address: STRANGER, online: null, lastSeen: null },
      ],
    });
    await q;
    expect(presence.onlineState(PEER)).toBe(false);
    expect(presence.isUnknown(PEER)).toBe(false);
    expect(presence.onlineState(STRANGER)).toBeNull();
    expect(presence.isUnknown(STRANGER)).toBe(true);
    expect(presence.isOnline(STRANGER)).toBe(false);
    // Not asked yet: shown offline, not unknown.
    const other = '0x4444444444444444444444444444444444444444';
    expect(presence.onlineState(other)).toBe(false);
    expect(presence.isUnknown(other)).toBe(false);
  });

  it('a push after unknown turns the user known and emits a change', async () => {
    const { presence, ws } = await setup();
    presence.set({ address: STRANGER, online: null, lastSeen: null });
    const changes: unknown[] = [];
    presence.on('change', (p) => changes.push(p));
    ws.event('presence.update', { address: STRANGER, online: true, lastSeen: null });
    await settle();
    expect(presence.onlineState(STRANGER)).toBe(true);
    expect(changes).toEqual([expect.objectContaining({ online: true, lastSeen: null })]);
  });
});
