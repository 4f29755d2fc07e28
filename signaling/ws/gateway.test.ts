import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { loadConfig } from '../../config/config.ts';
import { captureLog } from '../../testkit/fakes.ts';
import { SessionService } from '../auth/session-service.ts';
import { MemorySessionStore } from '../auth/sessions/memory.ts';
import { TokenService } from '../auth/tokens.ts';
import { createMetrics } from '../metrics.ts';
import { MemoryRateLimiter } from '../ratelimit/memory.ts';
import type { RateLimiter } from '../ratelimit/limiter.ts';
import type { Connection } from './connection.ts';
import { Dispatcher, type Handlers } from './dispatch.ts';
import { Gateway, type GatewayHooks } from './gateway.ts';

const ALICE = '0x1111111111111111111111111111111111111111';
const ORIGIN = 'http://app.example';
const SECRET = 'gateway-test-secret-0123456789abcdef';

interface Started {
  url: string;
  gateway: Gateway;
  tokens: TokenService;
  /** A signed-in session's first token, as POST /auth/verify hands it out. */
  issue(address: string): Promise<{ token: string; expiresAt: number }>;
  hooks: { opened: ReturnType<typeof vi.fn>; closed: ReturnType<typeof vi.fn> };
  conns: Connection[];
  cap: ReturnType<typeof captureLog>;
  metrics: ReturnType<typeof createMetrics>;
}

const servers: Server[] = [];
const clients: WebSocket[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.terminate();
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

async function start(opts: { connectLimit?: string; opened?: GatewayHooks['opened']; limiter?: RateLimiter } = {}): Promise<Started> {
  const config = loadConfig('all', {
    NODE_ID: 'gw-test',
    LOG_LEVEL: 'silent',
    JWT_SECRET: SECRET,
    ALLOWED_ORIGINS: ORIGIN,
    RATE_LIMIT_CONNECT: opts.connectLimit ?? '100/60',
    WS_MAX_PAYLOAD_BYTES: '4096',
  });
  const tokens = new TokenService(SECRET, 60);
  const metrics = createMetrics();
  const cap = captureLog();
  const conns: Connection[] = [];
  const sessions = new SessionService(new MemorySessionStore(), tokens, { maxAgeSec: 3600, maxConnectionsPerUser: 100 }, { forEach: (fn) => conns.forEach(fn), local: () => undefined });
  const handlers = { 'session.refresh': async () => ({ token: 'fresh', expiresAt: 'later' }) } as unknown as Handlers;
  const dispatcher = new Dispatcher(handlers, 50, metrics, cap.log);
  const hooks = {
    opened: vi.fn(opts.opened ?? (async (c: Connection) => void conns.push(c))),
    closed: vi.fn(async (_c: Connection) => undefined),
  };
  const gateway = new Gateway(config, sessions, opts.limiter ?? new MemoryRateLimiter(), dispatcher, hooks, metrics, cap.log);
  const server = createServer((_req, res) => res.writeHead(426).end());
  server.on('upgrade', (req: IncomingMessage, socket, head) => gateway.handleUpgrade(req, socket, head));
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { url: `ws://127.0.0.1:${port}`, gateway, tokens, issue: (a) => sessions.signIn(a), hooks, conns, cap, metrics };
}

type Outcome =
  | { kind: 'refused'; status: number; code: string | undefined; retryAfter: string | undefined; body: { error: { code: string; message: string } } }
  | { kind: 'open'; ws: WebSocket; protocol: string; firstFrame: Record<string, unknown> };

/** Connects and returns either the HTTP refusal or the open socket with its first frame. */
function connect(url: string, protocols: string[], headers: Record<string, string> = {}, origin: string | undefined = ORIGIN): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, { headers, ...(origin ? { origin } : {}) });
    clients.push(ws);
    ws.on('unexpected-response', (_req, res) => {
      let raw = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (raw += d));
      res.on('end', () =>
        resolve({
          kind: 'refused',
          status: res.statusCode ?? 0,
          code: res.headers['x-blockrtc-error'] as string | undefined,
          retryAfter: res.headers['retry-after'] as string | undefined,
          body: JSON.parse(raw),
        }),
      );
    });
    ws.once('message', (data) => resolve({ kind: 'open', ws, protocol: ws.protocol, firstFrame: JSON.parse(String(data)) }));
    ws.on('error', (err) => reject(err));
  });
}

const bearer = (t: string) => ['blockrtc.v1', `bearer.${t}`];
const closeOf = (ws: WebSocket) => new Promise<{ code: number; reason: string }>((r) => ws.once('close', (code, reason) => r({ code, reason: String(reason) })));
const waitFor = async (cond: () => boolean, ms = 5000) => {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('Gateway: refusals before the upgrade', () => {
  it('404 NOT_FOUND for another path', async () => {
    const s = await start();
    const r = await connect(`${s.url}/other`, bearer((await s.issue(ALICE)).token));
    expect(r).toMatchObject({ kind: 'refused', status: 404, code: 'NOT_FOUND', body: { error: { code: 'NOT_FOUND' } } });
    expect(s.hooks.opened).not.toHaveBeenCalled();
  });

  it('503 DRAINING while the node drains', async () => {
    const s = await start();
    s.gateway.draining = true;
    const r = await connect(`${s.url}/ws`, bearer((await s.issue(ALICE)).token));
    expect(r).toMatchObject({ kind: 'refused', status: 503, code: 'DRAINING', body: { error: { code: 'DRAINING' } } });
  });

  it('403 ORIGIN_NOT_ALLOWED for an origin not in the list', async () => {
    const s = await start();
    const r = await connect(`${s.url}/ws`, bearer((await s.issue(ALICE)).token), {}, 'http://evil.example');
    expect(r).toMatchObject({ kind: 'refused', status: 403, code: 'ORIGIN_NOT_ALLOWED' });
    expect(s.hooks.opened).not.toHaveBeenCalled();
  });

  it('400 BAD_REQUEST for a protocol version this server does not speak', async () => {
    const s = await start();
    const r = await connect(`${s.url}/ws`, ['blockrtc.v2', `bearer.${(await s.issue(ALICE)).token}`]);
    expect(r).toMatchObject({ kind: 'refused', status: 400, code: 'BAD_REQUEST' });
    if (r.kind === 'refused') expect(r.body.error.message).toContain('blockrtc.v2');
  });

  it('401 AUTH_TOKEN_MISSING without a token', async () => {
    const s = await start();
    const r = await connect(`${s.url}/ws`, ['blockrtc.v1']);
    expect(r).toMatchObject({ kind: 'refused', status: 401, code: 'AUTH_TOKEN_MISSING' });
    expect((await s.metrics.authFailures.get()).values).toEqual([expect.objectContaining({ labels: { code: 'AUTH_TOKEN_MISSING' }, value: 1 })]);
  });

  it('401 AUTH_TOKEN_INVALID for a token signed with another secret or mangled', async () => {
    const s = await start();
    const other = new TokenService('another-secret-0123456789abcdefghijkl', 60).issue({ address: ALICE, sid: 's1', gen: 0, sessionExpiresAt: Date.now() + 3_600_000 }).token;
    expect(await connect(`${s.url}/ws`, bearer(other))).toMatchObject({ kind: 'refused', status: 401, code: 'AUTH_TOKEN_INVALID' });
    expect(await connect(`${s.url}/ws`, bearer('not.a.jwt'))).toMatchObject({ kind: 'refused', status: 401, code: 'AUTH_TOKEN_INVALID' });
    expect(await connect(`${s.url}/ws`, ['blockrtc.v1'], { authorization: 'Bearer garbage' })).toMatchObject({ kind: 'refused', status: 401, code: 'AUTH_TOKEN_INVALID' });
  });

  it('401 AUTH_TOKEN_EXPIRED for an expired token', async () => {
    const s = await start();
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() - 3_600_000);
    const old = (await s.issue(ALICE)).token;
    vi.useRealTimers();
    const r = await connect(`${s.url}/ws`, bearer(old));
    expect(r).toMatchObject({ kind: 'refused', status: 401, code: 'AUTH_TOKEN_EXPIRED' });
  });

  it('429 RATE_LIMITED with Retry-After past the per-IP connect limit (counted before the token check)', async () => {
    const s = await start({ connectLimit: '2/60' });
    expect(await connect(`${s.url}/ws`, bearer('bad'))).toMatchObject({ code: 'AUTH_TOKEN_INVALID' });
    expect(await connect(`${s.url}/ws`, bearer('bad'))).toMatchObject({ code: 'AUTH_TOKEN_INVALID' });
    const r = await connect(`${s.url}/ws`, bearer((await s.issue(ALICE)).token));
    expect(r).toMatchObject({ kind: 'refused', status: 429, code: 'RATE_LIMITED', body: { error: { code: 'RATE_LIMITED' } } });
    if (r.kind === 'refused') expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(59);
    expect((await s.metrics.rateLimited.get()).values).toEqual([expect.objectContaining({ labels: { limit: 'connect' }, value: 1 })]);
  });

  it('500 INTERNAL (logged) when the rate limiter itself fails', async () => {
    const s = await start({ limiter: { hit: async () => Promise.reject(new Error('redis down')) } });
    const r = await connect(`${s.url}/ws`, bearer((await s.issue(ALICE)).token));
    expect(r).toMatchObject({ kind: 'refused', status: 500, code: 'INTERNAL' });
    expect(s.cap.at('error')).toEqual([expect.objectContaining({ msg: 'upgrade failed' })]);
    expect(s.hooks.opened).not.toHaveBeenCalled();
  });
});

describe('Gateway: accepted connections', () => {
  it('opens with the token as a subprotocol, calls opened and sends session.hello', async () => {
    const s = await start();
    const { token, expiresAt } = await s.issue(ALICE);
    const r = await connect(`${s.url}/ws`, bearer(token));
    expect(r.kind).toBe('open');
    if (r.kind !== 'open') return;
    // Only the version is echoed back, never the bearer entry.
    expect(r.protocol).toBe('blockrtc.v1');
    expect(s.hooks.opened).toHaveBeenCalledTimes(1);
    const conn = s.conns[0]!;
    expect(conn.address).toBe(ALICE);
    expect(conn.ip).toBe('127.0.0.1');
    expect(r.firstFrame).toEqual({
      ev: 'session.hello',
      data: {
        protocol: 1,
        address: ALICE,
        node: 'gw-test',
        connection: conn.id,
        tokenExpiresAt: new Date(expiresAt).toISOString(),
        limits: { maxPayloadBytes: 4096, messages: { limit: 100, windowMs: 10_000 } },
      },
    });
    expect(conn.id.startsWith('gw-test.')).toBe(true);
    expect((await s.metrics.connectionsTotal.get()).values[0]!.value).toBe(1);
  });

  it('accepts an Authorization header and an Origin-less client', async () => {
    const s = await start();
    const r = await connect(`${s.url}/ws`, ['blockrtc.v1'], { authorization: `Bearer ${(await s.issue(ALICE)).token}` }, undefined);
    expect(r).toMatchObject({ kind: 'open', firstFrame: { ev: 'session.hello' } });
  });

  it('gives each connection its own id', async () => {
    const s = await start();
    await connect(`${s.url}/ws`, bearer((await s.issue(ALICE)).token));
    await connect(`${s.url}/ws`, bearer((await s.issue(ALICE)).token));
    expect(new Set(s.conns.map((c) => c.id)).size).toBe(2);
  });

  it('hands frames to the dispatcher and answers on the socket', async () => {
    const s = await start();
    const r = await connect(`${s.url}/ws`, bearer((await s.issue(ALICE)).token));
    if (r.kind !== 'open') throw new Error('not open');
    const reply = new Promise((res) => r.ws.once('message', (d) => res(JSON.parse(String(d)))));
    r.ws.send(JSON.stringify({ id: 'q1', type: 'session.refresh' }));
    expect(await reply).toEqual({ re: 'q1', ok: true, data: { token: 'fresh', expiresAt: 'later' } });
    const bad = new Promise((res) => r.ws.once('message', (d) => res(JSON.parse(String(d)))));
    r.ws.send('{oops');
    expect(await bad).toMatchObject({ re: null, ok: false, error: { code: 'BAD_JSON' } });
  });

  it('closes with 1009 on a frame over WS_MAX_PAYLOAD_BYTES and calls closed', async () => {
    const s = await start();
    const r = await connect(`${s.url}/ws`, bearer((await s.issue(ALICE)).token));
    if (r.kind !== 'open') throw new Error('not open');
    const closed = closeOf(r.ws);
    r.ws.send('x'.repeat(5000));
    expect((await closed).code).toBe(1009);
    await waitFor(() => s.hooks.closed.mock.calls.length === 1);
  });

  it('answers UNAVAILABLE and closes with 1011 when opened fails', async () => {
    const s = await start({ opened: async () => Promise.reject(new Error('redis subscribe failed')) });
    const r = await connect(`${s.url}/ws`, bearer((await s.issue(ALICE)).token));
    if (r.kind !== 'open') throw new Error('not open');
    const closed = closeOf(r.ws);
    expect(r.firstFrame).toEqual({ re: null, ok: false, error: { code: 'UNAVAILABLE', message: expect.any(String) } });
    expect((await closed).code).toBe(1011);
    expect(s.cap.at('error')).toEqual([expect.objectContaining({ msg: 'connection setup failed', user: ALICE })]);
  });

  it('calls closed exactly once when the client goes away', async () => {
    const s = await start();
    const r = await connect(`${s.url}/ws`, bearer((await s.issue(ALICE)).token));
    if (r.kind !== 'open') throw new Error('not open');
    r.ws.close(1000, 'bye');
    await waitFor(() => s.hooks.closed.mock.calls.length > 0);
    await new Promise((res) => setTimeout(res, 50));
    expect(s.hooks.closed).toHaveBeenCalledTimes(1);
    expect(s.hooks.closed.mock.calls[0]![0]).toBe(s.conns[0]);
    expect(s.conns[0]!.closed).toBe(true);
  });

  it('calls closed exactly once when the server closes the connection', async () => {
    const s = await start();
    const r = await connect(`${s.url}/ws`, bearer((await s.issue(ALICE)).token));
    if (r.kind !== 'open') throw new Error('not open');
    const closed = closeOf(r.ws);
    s.conns[0]!.close(4008, 'slow consumer');
    expect(await closed).toEqual({ code: 4008, reason: 'slow consumer' });
    await waitFor(() => s.hooks.closed.mock.calls.length > 0);
    await new Promise((res) => setTimeout(res, 50));
    expect(s.hooks.closed).toHaveBeenCalledTimes(1);
  });

  it('logs a failing closed hook as a warning and carries on', async () => {
    const s = await start();
    s.hooks.closed.mockRejectedValueOnce(new Error('presence store down'));
    const r = await connect(`${s.url}/ws`, bearer((await s.issue(ALICE)).token));
    if (r.kind !== 'open') throw new Error('not open');
    r.ws.terminate();
    await waitFor(() => s.cap.at('warn').length > 0);
    expect(s.cap.at('warn')[0]).toMatchObject({ msg: 'disconnect bookkeeping failed', user: ALICE });
    // The gateway still accepts connections.
    expect(await connect(`${s.url}/ws`, bearer((await s.issue(ALICE)).token))).toMatchObject({ kind: 'open' });
  });
});
