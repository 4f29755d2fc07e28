import { beforeEach, describe, expect, it, vi } from 'vitest';
import { Engine, type Session } from './engine.ts';
import { MemoryStore, readJson, writeJson } from './storage.ts';
import { FakeSocket, settle } from './test-support/fake-socket.ts';

// A lost answer shows up as a hung promise: fail fast instead of at the suite's long default.
vi.setConfig({ testTimeout: 5_000 });

const ME = '0x1111111111111111111111111111111111111111';
const SESSION_KEY = 'blockrtc.session.v1';

function engineWith(session: Session | null, storage = new MemoryStore()): Engine {
  if (session) writeJson(storage, SESSION_KEY, session);
  return new Engine({
    baseUrl: 'http://test.local/',
    storage,
    tabStorage: new MemoryStore(),
    WebSocketImpl: FakeSocket.impl,
    reconnectPolicy: { nextRetryDelayInMs: () => 0 },
  });
}

async function open(engine: Engine): Promise<FakeSocket> {
  const done = engine.connect();
  await settle();
  FakeSocket.last.open({ address: engine.address ?? '' });
  await done;
  return FakeSocket.last;
}

const hour = () => Date.now() + 3_600_000;

beforeEach(() => FakeSocket.reset());

describe('Engine session', () => {
  it('resumes a stored session and connects to the ws URL of the base URL with its token', async () => {
    const engine = engineWith({ address: ME, token: 'tok-a', expiresAt: hour() });
    expect(engine.resume()?.address).toBe(ME);
    await open(engine);
    expect(FakeSocket.last.url).toBe('ws://test.local/ws');
    expect(FakeSocket.last.protocols[1]).toBe('bearer.tok-a');
  });

  it('does not resume a token that is (nearly) expired, and then cannot connect', async () => {
    const engine = engineWith({ address: ME, token: 'old', expiresAt: Date.now() + 5_000 });
    expect(engine.resume()).toBeNull();
    await expect(engine.connect()).rejects.toMatchObject({ code: 'AUTH_REQUIRED' });
    expect(FakeSocket.instances).toHaveLength(0);
  });

  it('keeps the token the server pushes (session.token) and uses it for the next connection', async () => {
    const storage = new MemoryStore();
    const engine = engineWith({ address: ME, token: 'tok-a', expiresAt: hour() }, storage);
    engine.resume();
    const sessions = vi.fn();
    engine.on('session', sessions);
    const ws = await open(engine);
    const expiresAt = new Date(hour() + 60_000).toISOString();
    ws.event('session.token', { token: 'tok-b', expiresAt });
    expect(engine.session).toEqual({ address: ME, token: 'tok-b', expiresAt: Date.parse(expiresAt) });
    expect(readJson<Session>(storage, SESSION_KEY)?.token).toBe('tok-b');
    // Same user: not a new sign-in.
    expect(sessions).not.toHaveBeenCalled();

    ws.drop();
    await new Promise((r) => setTimeout(r, 0));
    await settle();
    expect(FakeSocket.instances).toHaveLength(2);
    expect(FakeSocket.last.protocols[1]).toBe('bearer.tok-b');
  });

  it('reconnects with the newest token another tab stored (a refresh there supersedes ours)', async () => {
    const storage = new MemoryStore();
    const engine = engineWith({ address: ME, token: 'tok-a', expiresAt: hour() }, storage);
    engine.resume();
    const ws = await open(engine);
    // Another tab of the same session refreshed and stored its newer token.
    writeJson(storage, SESSION_KEY, { address: ME, token: 'tok-other-tab', expiresAt: hour() + 120_000 });
    ws.drop();
    await new Promise((r) => setTimeout(r, 0));
    await settle();
    expect(FakeSocket.instances).toHaveLength(2);
    expect(FakeSocket.last.protocols[1]).toBe('bearer.tok-other-tab');
  });

  it('forgets the session and stops reconnecting when the server ends it (close 4003)', async () => {
    const storage = new MemoryStore();
    const engine = engineWith({ address: ME, token: 'tok-a', expiresAt: hour() }, storage);
    engine.resume();
    const sessions = vi.fn();
    engine.on('session', sessions);
    const ws = await open(engine);
    ws.drop(4003, 'session ended');
    await new Promise((r) => setTimeout(r, 0));
    await settle();
    expect(sessions).toHaveBeenCalledWith(null);
    expect(engine.session).toBeNull();
    expect(readJson<Session>(storage, SESSION_KEY)).toBeNull();
    expect(FakeSocket.instances).toHaveLength(1);
  });

  it('asks for a fresh token right after connecting when the current one is about to expire', async () => {
    const engine = engineWith({ address: ME, token: 'tok-a', expiresAt: Date.now() + 60_000 });
    engine.resume();
    const ws = await open(engine);
    await settle();
    const req = ws.request('session.refresh');
    const expiresAt = new Date(hour()).toISOString();
    ws.reply(req.id, { token: 'tok-fresh', expiresAt });
    await settle();
    expect(engine.session?.token).toBe('tok-fresh');
  });

  it('keeps the old token when the refresh fails', async () => {
    const engine = engineWith({ address: ME, token: 'tok-a', expiresAt: Date.now() + 60_000 });
    engine.resume();
    const ws = await open(engine);
    await settle();
    ws.fail(ws.request('session.refresh').id, 'UNAUTHORIZED');
    await settle();
    expect(engine.session?.token).toBe('tok-a');
    expect(engine.signal.state).toBe('open');
  });

  it('does not refresh a token with plenty of life left', async () => {
    const engine = engineWith({ address: ME, token: 'tok-a', expiresAt: hour() });
    engine.resume();
    const ws = await open(engine);
    await settle();
    expect(ws.requests('session.refresh')).toHaveLength(0);
  });

  it('signOut closes the connection, forgets the stored session and reports null', async () => {
    const storage = new MemoryStore();
    const engine = engineWith({ address: ME, token: 'tok-a', expiresAt: hour() }, storage);
    engine.resume();
    await open(engine);
    const sessions = vi.fn();
    engine.on('session', sessions);
    engine.signOut();
    expect(engine.signal.state).toBe('closed');
    expect(engine.session).toBeNull();
    expect(storage.getItem(SESSION_KEY)).toBeNull();
    expect(sessions).toHaveBeenCalledWith(null);
  });

  it('keeps one device id per tab storage', () => {
    const tab = new MemoryStore();
    const a = new Engine({ baseUrl: 'http://x', storage: new MemoryStore(), tabStorage: tab });
    const b = new Engine({ baseUrl: 'http://x', storage: new MemoryStore(), tabStorage: tab });
    expect(a.deviceId).toMatch(/^w[A-Za-z0-9_-]{15}$/);
    expect(b.deviceId).toBe(a.deviceId);
    expect(new Engine({ baseUrl: 'http://x', storage: new MemoryStore(), tabStorage: new MemoryStore() }).deviceId).not.toBe(a.deviceId);
  });
});
