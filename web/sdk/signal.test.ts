import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BlockRtcClientError } from './errors.ts';
import { ExponentialBackoffPolicy, SignalClient, SUBPROTOCOL, type ReconnectContext, type SignalClientOptions, type SignalState } from './signal.ts';
import { FakeSocket, settle } from './test-support/fake-socket.ts';

// A lost answer shows up as a hung promise: fail fast instead of at the suite's long default.
vi.setConfig({ testTimeout: 5_000 });

/** Records what the client asked and answers from a list (then a default). */
function recordingPolicy(delays: (number | null)[], fallback: number | null = 0) {
  const calls: ReconnectContext[] = [];
  return {
    calls,
    nextRetryDelayInMs(ctx: ReconnectContext): number | null {
      calls.push(ctx);
      return delays.length ? delays.shift()! : fallback;
    },
  };
}

function client(options: Partial<SignalClientOptions> = {}, token: string | null = 'tok1'): SignalClient {
  return new SignalClient({ url: 'ws://test/ws', tokens: { getToken: async () => token }, WebSocketImpl: FakeSocket.impl, ...options });
}

function states(c: SignalClient): SignalState[] {
  const out: SignalState[] = [];
  c.on('signal.state', ({ state }) => out.push(state));
  return out;
}

async function connected(c: SignalClient): Promise<FakeSocket> {
  const done = c.connect();
  await settle();
  const ws = FakeSocket.last;
  ws.open();
  await done;
  return ws;
}

beforeEach(() => FakeSocket.reset());
afterEach(() => vi.useRealTimers());

describe('SignalClient connection', () => {
  it('goes idle → connecting → open and offers the subprotocol and the bearer token', async () => {
    const c = client();
    const seen = states(c);
    expect(c.state).toBe('idle');
    const done = c.connect();
    await settle();
    expect(seen).toEqual(['connecting']);
    const ws = FakeSocket.last;
    expect(ws.url).toBe('ws://test/ws');
    expect(ws.protocols).toEqual([SUBPROTOCOL, 'bearer.tok1']);
    const opened = vi.fn();
    c.on('signal.open', opened);
    ws.open({ address: '0xabc' });
    const hello = await done;
    expect(hello.address).toBe('0xabc');
    expect(c.hello?.address).toBe('0xabc');
    expect(seen).toEqual(['connecting', 'open']);
    expect(opened).toHaveBeenCalledWith(expect.objectContaining({ reconnect: false }));
  });

  it('reports auth-required and rejects connect() when there is no token', async () => {
    const c = client({}, null);
    const done = c.connect();
    await expect(done).rejects.toMatchObject({ code: 'AUTH_REQUIRED' });
    expect(c.state).toBe('auth-required');
    expect(FakeSocket.instances).toHaveLength(0);
  });

  it('closes a socket that never says hello within connectTimeoutMs', async () => {
    vi.useFakeTimers();
    const c = client({ connectTimeoutMs: 1000, reconnectPolicy: recordingPolicy([], null) });
    const done = c.connect();
    done.catch(() => undefined);
    await vi.advanceTimersByTimeAsync(999);
    expect(FakeSocket.last.closedWith).toBeNull();
    await vi.advanceTimersByTimeAsync(1);
    expect(FakeSocket.last.closedWith).toEqual({ code: 4000, reason: 'no hello' });
    await expect(done).rejects.toMatchObject({ code: 'DISCONNECTED' });
  });
});

describe('SignalClient requests', () => {
  it('pairs answers with requests by id, whatever the order of the answers', async () => {
    const c = client();
    const ws = await connected(c);
    const a = c.request('contacts.list', {});
    const b = c.request('presence.query', { addresses: ['0x1'] });
    const [ra, rb] = ws.sent;
    expect(ra).toMatchObject({ type: 'contacts.list' });
    expect(rb).toMatchObject({ type: 'presence.query', addresses: ['0x1'] });
    expect(ra!.id).not.toBe(rb!.id);
    ws.reply(rb!.id, { presence: [{ address: '0x1', online: true, lastSeen: null }] });
    ws.reply(ra!.id, { contacts: [] });
    await expect(a).resolves.toEqual({ contacts: [] });
    await expect(b).resolves.toEqual({ presence: [{ address: '0x1', online: true, lastSeen: null }] });
  });

  it('rejects with the server error code and keeps the error body', async () => {
    const c = client();
    const ws = await connected(c);
    const p = c.request('contacts.list', {});
    ws.fail(ws.request('contacts.list').id, 'RATE_LIMITED', 'slow down', { retryAfterMs: 1234 });
    const err = await p.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BlockRtcClientError);
    expect(err).toMatchObject({ code: 'RATE_LIMITED', message: 'slow down', retryAfterMs: 1234 });
  });

  it('treats a failed answer without an error body as INTERNAL', async () => {
    const c = client();
    const ws = await connected(c);
    const p = c.request('contacts.list', {});
    ws.raw(JSON.stringify({ re: ws.request('contacts.list').id, ok: false }));
    await expect(p).rejects.toMatchObject({ code: 'INTERNAL' });
  });

  it('ignores frames that are not JSON, not text, or answer no pending request', async () => {
    const c = client();
    const ws = await connected(c);
    const p = c.request('contacts.list', {});
    const id = ws.request('contacts.list').id;
    let settled = false;
    p.then(() => (settled = true), () => (settled = true));
    ws.raw('{not json');
    ws.raw(new Uint8Array([1, 2, 3]));
    ws.reply('r999', { contacts: ['wrong'] });
    ws.raw(JSON.stringify({ re: null, ok: false, error: { code: 'INVALID_FRAME', message: 'x' } }));
    await settle();
    expect(settled).toBe(false);
    expect(c.state).toBe('open');
    ws.reply(id, { contacts: [] });
    await expect(p).resolves.toEqual({ contacts: [] });
  });

  it('fails at once with DISCONNECTED when not connected', async () => {
    const c = client();
    await expect(c.request('contacts.list', {})).rejects.toMatchObject({ code: 'DISCONNECTED' });
  });

  it('times out a request nobody answers', async () => {
    vi.useFakeTimers();
    const c = client({ requestTimeoutMs: 500 });
    await connected(c);
    const p = c.request('contacts.list', {});
    const caught = p.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(499);
    await vi.advanceTimersByTimeAsync(1);
    expect(await caught).toMatchObject({ code: 'TIMEOUT' });
  });

  it('fails pending requests with DISCONNECTED when the link drops', async () => {
    const c = client({ reconnectPolicy: recordingPolicy([], null) });
    const ws = await connected(c);
    const closed = vi.fn();
    c.on('signal.close', closed);
    const a = c.request('contacts.list', {});
    const b = c.request('chat.sync', { limit: 10 });
    ws.drop(1006, 'gone');
    await expect(a).rejects.toMatchObject({ code: 'DISCONNECTED' });
    await expect(b).rejects.toMatchObject({ code: 'DISCONNECTED' });
    expect(closed).toHaveBeenCalledWith({ code: 1006, reason: 'gone' });
    expect(c.lastCloseInfo).toEqual({ code: 1006, reason: 'gone' });
  });

  it('close() fails pending requests, closes the socket and does not reconnect', async () => {
    const policy = recordingPolicy([]);
    const c = client({ reconnectPolicy: policy });
    const ws = await connected(c);
    const p = c.request('contacts.list', {});
    c.close();
    await expect(p).rejects.toMatchObject({ code: 'DISCONNECTED' });
    expect(ws.closedWith).toEqual({ code: 1000, reason: 'client closing' });
    await settle();
    expect(c.state).toBe('closed');
    expect(policy.calls).toHaveLength(0);
    expect(FakeSocket.instances).toHaveLength(1);
  });
});

describe('SignalClient reconnect', () => {
  it('waits for the delay the policy gives, then reconnects and reports reconnect: true', async () => {
    vi.useFakeTimers();
    const policy = recordingPolicy([200, 400]);
    const c = client({ reconnectPolicy: policy });
    const ws1 = await connected(c);
    const seen = states(c);
    const opens: boolean[] = [];
    c.on('signal.open', ({ reconnect }) => opens.push(reconnect));

    ws1.drop(1012, 'restart');
    expect(c.state).toBe('reconnecting');
    expect(policy.calls).toEqual([{ attempt: 1, elapsedMs: 0, closeCode: 1012, closeReason: 'restart' }]);
    await vi.advanceTimersByTimeAsync(199);
    expect(FakeSocket.instances).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(FakeSocket.instances).toHaveLength(2);

    // The second attempt fails too: attempt 2, with the time since the loss.
    FakeSocket.last.drop(1006, '');
    expect(policy.calls[1]).toMatchObject({ attempt: 2, elapsedMs: 200, closeCode: 1006 });
    await vi.advanceTimersByTimeAsync(400);
    expect(FakeSocket.instances).toHaveLength(3);
    FakeSocket.last.open();
    expect(c.state).toBe('open');
    expect(opens).toEqual([true]);
    expect(seen).toEqual(['reconnecting', 'open']);

    // A later loss starts counting from 1 again.
    FakeSocket.last.drop(1006, '');
    expect(policy.calls[2]).toMatchObject({ attempt: 1, elapsedMs: 0 });
  });

  it('stops and reports closed when the policy gives up', async () => {
    const policy = recordingPolicy([null]);
    const c = client({ reconnectPolicy: policy });
    const ws = await connected(c);
    ws.drop();
    expect(c.state).toBe('closed');
    expect(policy.calls).toHaveLength(1);
    await settle();
    expect(FakeSocket.instances).toHaveLength(1);
  });

  it('reconnect() drops the socket at once and fails what was pending', async () => {
    const c = client();
    const ws = await connected(c);
    const p = c.request('contacts.list', {});
    c.reconnect();
    await expect(p).rejects.toMatchObject({ code: 'DISCONNECTED', message: 'reconnecting' });
    expect(ws.closedWith).toEqual({ code: 1000, reason: 'reconnecting' });
    await settle();
    expect(FakeSocket.instances).toHaveLength(2);
    expect(c.state).toBe('reconnecting');
  });

  it('asks the token source again on every attempt', async () => {
    let n = 0;
    const c = new SignalClient({ url: 'ws://test/ws', tokens: { getToken: async () => `t${++n}` }, WebSocketImpl: FakeSocket.impl, reconnectPolicy: recordingPolicy([]) });
    const done = c.connect();
    await settle();
    FakeSocket.last.open();
    await done;
    FakeSocket.last.drop();
    await new Promise((r) => setTimeout(r, 0));
    await settle();
    expect(FakeSocket.instances.map((s) => s.protocols[1])).toEqual(['bearer.t1', 'bearer.t2']);
  });
});

describe('ExponentialBackoffPolicy', () => {
  const ctx = (attempt: number, elapsedMs = 0): ReconnectContext => ({ attempt, elapsedMs, closeCode: 1006, closeReason: '' });

  it('doubles from the initial delay up to the maximum without jitter', () => {
    const p = new ExponentialBackoffPolicy({ initialDelayMs: 100, maxDelayMs: 1000, jitter: 0 });
    expect([1, 2, 3, 4, 5, 6].map((a) => p.nextRetryDelayInMs(ctx(a)))).toEqual([100, 200, 400, 800, 1000, 1000]);
  });

  it('keeps jittered delays within the spread', () => {
    const p = new ExponentialBackoffPolicy({ initialDelayMs: 1000, jitter: 0.5 });
    for (let i = 0; i < 50; i++) {
      const d = p.nextRetryDelayInMs(ctx(1))!;
      expect(d).toBeGreaterThanOrEqual(500);
      expect(d).toBeLessThanOrEqual(1500);
    }
  });

  it('gives up after maxAttempts or maxElapsedMs', () => {
    const p = new ExponentialBackoffPolicy({ maxAttempts: 2, maxElapsedMs: 5000, jitter: 0 });
    expect(p.nextRetryDelayInMs(ctx(2))).not.toBeNull();
    expect(p.nextRetryDelayInMs(ctx(3))).toBeNull();
    expect(p.nextRetryDelayInMs(ctx(1, 5001))).toBeNull();
  });
});
