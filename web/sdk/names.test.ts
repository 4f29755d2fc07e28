import { beforeEach, describe, expect, it, vi } from 'vitest';
import { Engine } from './engine.ts';
import { NameClient } from './names.ts';
import { MemoryStore, writeJson } from './storage.ts';
import { FakeSocket, settle } from './test-support/fake-socket.ts';

vi.setConfig({ testTimeout: 5_000 });

const ME = '0x1111111111111111111111111111111111111111';
const ALICE = '0x2222222222222222222222222222222222222222';
const BOB = '0x3333333333333333333333333333333333333333';

async function setup() {
  const storage = new MemoryStore();
  writeJson(storage, 'blockrtc.session.v1', { address: ME, token: 'tok', expiresAt: Date.now() + 3_600_000 });
  const engine = new Engine({ baseUrl: 'http://test', storage, tabStorage: new MemoryStore(), WebSocketImpl: FakeSocket.impl, reconnectPolicy: { nextRetryDelayInMs: () => 0 } });
  let now = 1_000_000;
  const names = new NameClient(engine, () => now);
  engine.resume();
  const done = engine.connect();
  await settle();
  const ws = FakeSocket.last;
  ws.open({ address: ME });
  await done;
  await settle();
  return { names, ws, advance: (ms: number) => (now += ms) };
}

beforeEach(() => FakeSocket.reset());

describe('NameClient', () => {
  it('asks once per tick for every wanted address and shows names with a short-address fallback', async () => {
    const { names, ws } = await setup();
    const changes: unknown[] = [];
    names.on('change', (c) => changes.push(c));
    names.want([ALICE]);
    names.want([BOB.toLowerCase(), ALICE]);
    await settle();
    expect(ws.requests('ens.names')).toHaveLength(1);
    expect(ws.request('ens.names').addresses).toEqual([ALICE, BOB]);
    ws.reply(ws.request('ens.names').id, { incomplete: false, names: [{ address: ALICE, name: 'alice.eth' }, { address: BOB, name: null }] });
    await settle();
    expect(names.display(ALICE)).toBe('alice.eth');
    expect(names.display(BOB)).toBe('0x3333…3333');
    expect(changes).toEqual([{ address: ALICE, name: 'alice.eth' }, { address: BOB, name: null }]);
    // Known, or asked within the last minute: not asked again.
    names.want([ALICE, BOB]);
    await settle();
    expect(ws.requests('ens.names')).toHaveLength(1);
  });

  it('asks again later for names the server could not look up', async () => {
    const { names, ws, advance } = await setup();
    names.want([ALICE]);
    await settle();
    ws.reply(ws.request('ens.names').id, { incomplete: true, names: [{ address: ALICE, name: null }] });
    await settle();
    expect(names.get(ALICE)).toBeNull();
    advance(61_000);
    names.want([ALICE]);
    await settle();
    expect(ws.requests('ens.names')).toHaveLength(2);
  });

  it('stops asking a server without ENS, and resolves names to addresses', async () => {
    const { names, ws } = await setup();
    names.want([ALICE]);
    await settle();
    ws.fail(ws.request('ens.names').id, 'CHAIN_NOT_CONFIGURED');
    await settle();
    names.want([BOB]);
    await settle();
    expect(ws.requests('ens.names')).toHaveLength(1);
    expect(names.display(BOB)).toBe('0x3333…3333');

    const r = names.resolve(' alice.eth ');
    await settle();
    expect(ws.request('ens.resolve').name).toBe('alice.eth');
    ws.reply(ws.request('ens.resolve').id, { name: 'alice.eth', address: ALICE });
    expect(await r).toEqual({ name: 'alice.eth', address: ALICE });
    expect(names.get(ALICE)).toBe('alice.eth');
  });
});

describe('NameClient.display', () => {
  it('falls back to what it was given when that is no address', async () => {
    const { names } = await setup();
    expect(names.display('')).toBe('');
    expect(names.display('0x12')).toBe('0x12');
  });
});
