import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { Wallet } from 'ethers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLOSE } from '../protocol/errors.ts';
import { RequestError, TestClient, signIn } from '../testkit/client.ts';
import { migrate, startNode, type NodeProcess } from '../testkit/node.ts';
import { createTestDatabase, query } from '../testkit/pg.ts';
import { REDIS_URL, clearPrefix, startRedisCluster, testPrefix, type TestCluster } from '../testkit/redis.ts';

/**
 * Server-side sessions and uploads on two real signaling nodes (child processes) sharing
 * PostgreSQL and Redis; the same suite runs against a single Redis and a Redis Cluster.
 */
describe.each(['redis', 'cluster'] as const)('sessions and uploads on %s', (flavour) => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let cluster: TestCluster | null = null;
  let redisEnv: Record<string, string>;
  let prefix: string;
  let a: NodeProcess;
  let b: NodeProcess;
  const started: NodeProcess[] = [];
  const clients: TestClient[] = [];

  const boot = async (extra: Record<string, string> = {}) => {
    const n = await startNode('signaling', {
      DATABASE_URL: db.url,
      ...redisEnv,
      REDIS_KEY_PREFIX: prefix,
      RATE_LIMIT_AUTH: '10000/60',
      RATE_LIMIT_CONNECT: '10000/60',
      RATE_LIMIT_MESSAGES: '1000/10',
      MAX_CONNECTIONS_PER_USER: '3',
      ...extra,
    });
    started.push(n);
    return n;
  };
  const track = <T extends TestClient>(c: T): T => (clients.push(c), c);
  const connectCode = (base: string, token: string, address: string) =>
    TestClient.connect(base, token, address).then(
      (c) => (track(c), 'connected'),
      (e: unknown) => (e instanceof RequestError ? e.body.code : String(e)),
    );
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const upload = (base: string, token: string, to: string, body: Buffer) =>
    fetch(`${base}/media?to=${to}`, { method: 'POST', headers: { ...bearer(token), 'content-type': 'audio/ogg' }, body: new Uint8Array(body) });
  const codeOf = async (res: Response) => ((await res.json()) as { error: { code: string } }).error.code;

  beforeAll(async () => {
    db = await createTestDatabase(`sess${flavour}`);
    await migrate(db.url);
    prefix = testPrefix('sess');
    if (flavour === 'cluster') {
      cluster = await startRedisCluster();
      redisEnv = { REDIS_CLUSTER_NODES: cluster.nodes.join(',') };
    } else {
      redisEnv = { REDIS_URL };
    }
    [a, b] = await Promise.all([boot(), boot()]);
  });

  afterAll(async () => {
    for (const c of clients) c.ws.terminate();
    await Promise.all(started.map((n) => n.kill('SIGKILL')));
    if (cluster) await cluster.stop();
    else await clearPrefix(prefix);
    await db.drop();
  });

  it('refuses a token that a refresh replaced, and keeps the one before the newest for a short grace', async () => {
    const w = Wallet.createRandom();
    const first = await signIn(a.url, w);
    const c = track(await TestClient.connect(a.url, first.token, w.address));
    const second = await c.request('session.refresh', {});
    const third = await c.request('session.refresh', {});
    expect(third.token).not.toBe(second.token);
    // Two generations back: refused at once, on either node.
    expect(await connectCode(b.url, first.token, w.address)).toBe('AUTH_TOKEN_SUPERSEDED');
    expect(await connectCode(a.url, first.token, w.address)).toBe('AUTH_TOKEN_SUPERSEDED');
    // The one just replaced: accepted during the grace period (a reconnect under way).
    expect(await connectCode(b.url, second.token, w.address)).toBe('connected');
    expect(await connectCode(b.url, third.token, w.address)).toBe('connected');
    // HTTP requests check the same.
    const media = await fetch(`${a.url}/media/${randomUUID()}`, { headers: bearer(first.token) });
    expect(media.status).toBe(401);
    expect(await codeOf(media)).toBe('AUTH_TOKEN_SUPERSEDED');
  });

  it('session.signOut closes every socket of that session on every node, and only that session', async () => {
    const w = Wallet.createRandom();
    const s1 = await signIn(a.url, w);
    const s2 = await signIn(b.url, w); // another device: its own session
    const onA = track(await TestClient.connect(a.url, s1.token, w.address));
    const onB = track(await TestClient.connect(b.url, s1.token, w.address));
    const other = track(await TestClient.connect(b.url, s2.token, w.address));

    expect(await onA.request('session.signOut', {})).toEqual({});
    expect(await onA.closed).toBe(CLOSE.SESSION_ENDED);
    // The other node closes its socket of the session within a housekeeping tick or two.
    const t0 = Date.now();
    expect(await onB.closed).toBe(CLOSE.SESSION_ENDED);
    expect(Date.now() - t0).toBeLessThan(4000);
    expect(other.closeCode).toBeNull();
    expect((await other.request('presence.query', { addresses: [w.address] })).presence[0]!.online).toBe(true);

    expect(await connectCode(a.url, s1.token, w.address)).toBe('AUTH_SESSION_ENDED');
    expect(await connectCode(b.url, s2.token, w.address)).toBe('connected');
  });

  it('POST /auth/signout with the bearer token ends the session and closes its sockets', async () => {
    const w = Wallet.createRandom();
    const s = await signIn(a.url, w);
    const c = track(await TestClient.connect(b.url, s.token, w.address));
    const res = await fetch(`${a.url}/auth/signout`, { method: 'POST', headers: bearer(s.token) });
    expect(res.status).toBe(204);
    expect(await c.closed).toBe(CLOSE.SESSION_ENDED);
    expect(await connectCode(b.url, s.token, w.address)).toBe('AUTH_SESSION_ENDED');
    const again = await fetch(`${a.url}/auth/signout`, { method: 'POST', headers: bearer(s.token) });
    expect(again.status).toBe(401);
    expect(await codeOf(again)).toBe('AUTH_SESSION_ENDED');
    const none = await fetch(`${a.url}/auth/signout`, { method: 'POST' });
    expect(await codeOf(none)).toBe('AUTH_TOKEN_MISSING');
  });

  it('caps concurrent connections per user across nodes with TOO_MANY_CONNECTIONS', async () => {
    const w = Wallet.createRandom();
    const s = await signIn(a.url, w);
    const open = [
      track(await TestClient.connect(a.url, s.token, w.address)),
      track(await TestClient.connect(b.url, s.token, w.address)),
      track(await TestClient.connect(a.url, s.token, w.address)),
    ];
    const refused = await TestClient.connect(b.url, s.token, w.address).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(RequestError);
    expect((refused as RequestError).body.code).toBe('TOO_MANY_CONNECTIONS');
    await open[0]!.close();
    // Room again once the closed connection is no longer counted.
    let code = '';
    for (let i = 0; i < 20 && code !== 'connected'; i++) {
      code = await connectCode(b.url, s.token, w.address);
      if (code !== 'connected') await new Promise((r) => setTimeout(r, 200));
    }
    expect(code).toBe('connected');
  });

  it('ends a session at SESSION_MAX_AGE_SECONDS however often it is refreshed', async () => {
    const short = await boot({ SESSION_MAX_AGE_SECONDS: '6', JWT_TTL_SECONDS: '10' });
    const w = Wallet.createRandom();
    const t0 = Date.now();
    const s = await signIn(short.url, w);
    expect(Date.parse(s.expiresAt)).toBeLessThanOrEqual(t0 + 7_000);
    const c = track(await TestClient.connect(short.url, s.token, w.address));
    const r = await c.request('session.refresh', {});
    expect(Date.parse(r.expiresAt)).toBeLessThanOrEqual(Date.parse(s.expiresAt));
    expect(await c.closed).toBe(CLOSE.SESSION_ENDED);
    expect(Date.now() - t0).toBeLessThan(10_000);
    const code = await connectCode(short.url, r.token, w.address);
    expect(['AUTH_TOKEN_EXPIRED', 'AUTH_SESSION_ENDED']).toContain(code);
    await short.kill();
  });

  it('refuses an upload without a valid session before reading its body', async () => {
    const w = Wallet.createRandom();
    const peer = Wallet.createRandom().address;
    // Declares 60 000 bytes, sends 10 and keeps the request open: the answer must come anyway.
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(`${a.url}/media?to=${peer}`, {
        method: 'POST',
        headers: { authorization: 'Bearer not-a-token', 'content-type': 'audio/ogg', 'content-length': '60000' },
      });
      req.on('response', (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.write(Buffer.alloc(10));
      setTimeout(() => reject(new Error('no answer before the body was sent')), 3000).unref();
    });
    expect(answer.status).toBe(401);
    expect(JSON.parse(answer.body).error.code).toBe('AUTH_TOKEN_INVALID');
    void w;
  });

  it('streams a download with nosniff, and refuses uploads over the per-user quota', async () => {
    const node = await boot({ UPLOAD_MAX_BYTES: String(1024 * 1024), UPLOAD_QUOTA_BYTES: String(1_000_000) });
    const w = Wallet.createRandom();
    const s = await signIn(node.url, w);
    const peer = Wallet.createRandom();
    const big = Buffer.alloc(700_000);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
    const up = await upload(node.url, s.token, peer.address, big);
    expect(up.status).toBe(201);
    const { id } = (await up.json()) as { id: string };
    const dl = await fetch(`${node.url}/media/${id}`, { headers: bearer(s.token) });
    expect(dl.status).toBe(200);
    expect(dl.headers.get('x-content-type-options')).toBe('nosniff');
    expect(dl.headers.get('content-type')).toBe('audio/ogg');
    expect(Buffer.from(await dl.arrayBuffer()).equals(big)).toBe(true);
    // A stranger learns nothing.
    const stranger = await signIn(node.url, Wallet.createRandom());
    expect((await fetch(`${node.url}/media/${id}`, { headers: bearer(stranger.token) })).status).toBe(404);

    const over = await upload(node.url, s.token, peer.address, Buffer.alloc(400_000));
    expect(over.status).toBe(413);
    expect(await codeOf(over)).toBe('UPLOAD_QUOTA_EXCEEDED');
    const fits = await upload(node.url, s.token, peer.address, Buffer.alloc(200_000));
    expect(fits.status).toBe(201);
    const rows = await query<{ n: string }>(db.url, 'select count(*) as n from attachments where owner = $1', [w.address]);
    expect(Number(rows[0]!.n)).toBe(2);
    await node.kill();
  });

  it('removes uploads no message refers to after ATTACHMENT_ORPHAN_TTL_SECONDS', async () => {
    const node = await boot({ ATTACHMENT_ORPHAN_TTL_SECONDS: '2' });
    const sender = await TestClient.signInAndConnect(node.url);
    track(sender);
    const peer = Wallet.createRandom().address;
    const used = (await (await upload(node.url, sender.token, peer, Buffer.alloc(100, 1))).json()) as { id: string };
    const orphan = (await (await upload(node.url, sender.token, peer, Buffer.alloc(100, 2))).json()) as { id: string };
    await sender.request('chat.send', { to: peer, clientId: randomUUID(), kind: 'audio', attachmentId: used.id });
    const ids = async () => (await query<{ id: string }>(db.url, 'select id from attachments where id = any($1)', [[used.id, orphan.id]])).map((r) => r.id);
    expect((await ids()).sort()).toEqual([used.id, orphan.id].sort());
    const deadline = Date.now() + 8000;
    while (Date.now() < deadline && (await ids()).length > 1) await new Promise((r) => setTimeout(r, 250));
    expect(await ids()).toEqual([used.id]);
    await node.kill();
  });
});
