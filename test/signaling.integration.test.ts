import { randomUUID } from 'node:crypto';
import { Wallet } from 'ethers';
import jwt from 'jsonwebtoken';
import pg from 'pg';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BEARER_PROTOCOL_PREFIX, SUBPROTOCOL } from '../protocol/index.ts';
import { RequestError, TestClient, postJson, signIn, signSiwe } from '../testkit/client.ts';
import { startNode, migrate, TEST_JWT_SECRET, type NodeProcess } from '../testkit/node.ts';
import { createTestDatabase, query, tableCounts } from '../testkit/pg.ts';
import { REDIS_URL, clearPrefix, startRedisCluster, testPrefix, type TestCluster } from '../testkit/redis.ts';

/**
 * Two real signaling nodes (child processes) on real PostgreSQL and Redis; the same suite
 * runs against a single Redis and a 3-master Redis Cluster.
 */
describe.each(['redis', 'cluster'] as const)('signaling tier on %s', (flavour) => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let cluster: TestCluster | null = null;
  let redisEnv: Record<string, string>;
  let prefix: string;
  let a: NodeProcess;
  let b: NodeProcess;
  const started: NodeProcess[] = [];
  const clients: TestClient[] = [];

  const nodeEnv = (extra: Record<string, string> = {}) => ({
    DATABASE_URL: db.url,
    ...redisEnv,
    REDIS_KEY_PREFIX: prefix,
    PUBLIC_ORIGIN: 'http://app.test',
    ALLOWED_ORIGINS: 'http://app.test',
    AUTH_CHAIN_IDS: '1,10',
    RATE_LIMIT_AUTH: '10000/60',
    RATE_LIMIT_CONNECT: '10000/60',
    RATE_LIMIT_MESSAGES: '1000/10',
    WS_MAX_FRAMES_PER_SECOND: '200',
    PRESENCE_HEARTBEAT_MS: '1000',
    PRESENCE_STALE_MS: '4000',
    DRAIN_TIMEOUT_MS: '5000',
    UPLOAD_MAX_BYTES: '65536',
    ...extra,
  });
  const boot = async (extra: Record<string, string> = {}) => {
    const n = await startNode('signaling', nodeEnv(extra));
    started.push(n);
    return n;
  };
  /** Statements of this database waiting for a lock (a commit held by a test). */
  const lockWaiters = async () =>
    (await query<{ n: number }>(db.url, `select count(*)::int as n from pg_stat_activity where datname = $1 and wait_event_type = 'Lock'`, [db.name]))[0]!.n;
  const connect = async (base: string, wallet = Wallet.createRandom()) => {
    const c = await TestClient.signInAndConnect(base, wallet);
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    db = await createTestDatabase(flavour);
    await migrate(db.url);
    prefix = testPrefix(flavour);
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

  it('users on two nodes chat with acks, delivery and read receipts, and see each other online', async () => {
    const alice = await connect(a.url);
    const bob = await connect(b.url);
    await alice.request('contacts.add', { address: bob.address });
    await bob.request('contacts.add', { address: alice.address });

    const sent = await alice.send(bob.address, 'hello from node a');
    expect(sent.duplicate).toBe(false);
    expect(sent.id).toMatch(/^\d+$/);
    const got = await bob.waitFor('chat.message', (m) => m.id === sent.id);
    expect(got).toMatchObject({ from: alice.address, to: bob.address, kind: 'text', text: 'hello from node a' });

    await bob.request('chat.delivered', { peer: alice.address, ids: [sent.id] });
    const delivered = await alice.waitFor('chat.receipt', (r) => r.status === 'delivered' && r.ids.includes(sent.id));
    expect(delivered.by).toBe(bob.address);
    await bob.request('chat.read', { peer: alice.address, upTo: sent.id });
    await alice.waitFor('chat.receipt', (r) => r.status === 'read' && r.ids.includes(sent.id));

    const [row] = await query<{ sender: string; recipient: string; delivered_at: Date | null; read_at: Date | null }>(db.url, 'select * from messages where id = $1', [sent.id]);
    expect(row).toMatchObject({ sender: alice.address, recipient: bob.address });
    expect(row!.delivered_at).not.toBeNull();
    expect(row!.read_at).not.toBeNull();

    // Presence: a second device of Bob does not announce, closing the last one does.
    const bob2 = await connect(a.url, bob.wallet);
    const bobUpdates = () => alice.eventsOf('presence.update').filter((p) => p.address === bob.address);
    const seen = bobUpdates().length;
    await bob.close();
    expect((await alice.request('presence.query', { addresses: [bob.address] })).presence[0]).toMatchObject({ online: true });
    await bob2.close();
    const off = await alice.waitFor('presence.update', (p) => p.address === bob.address && p.online === false);
    expect(off.lastSeen).not.toBeNull();
    const bob3 = await connect(b.url, bob.wallet);
    await alice.waitFor('presence.update', (p) => p.address === bob.address && p.online === true && bobUpdates().indexOf(p) > bobUpdates().indexOf(off));
    // Between the two: exactly one offline (after the last device), then online again; closing
    // the first of two devices announced nothing.
    expect(bobUpdates().slice(seen).map((p) => p.online)).toEqual([false, true]);
    const q = await alice.request('presence.query', { addresses: [bob.address] });
    expect(q.presence[0]).toMatchObject({ address: bob.address, online: true });

    // Typing is relayed, never stored.
    await bob3.request('chat.typing', { to: alice.address, typing: true });
    expect(await alice.waitFor('chat.typing')).toEqual({ from: bob.address, typing: true });

    const list = await alice.request('contacts.list', {});
    expect(list.contacts[0]).toMatchObject({ address: bob.address, unread: 0, lastMessage: { id: sent.id, text: 'hello from node a' } });
  });

  it('delivers to every device of the recipient and mirrors sent messages to the sender\'s other devices', async () => {
    const carol = await connect(a.url);
    const carolPhone = await connect(b.url, carol.wallet);
    const dave = await connect(b.url);
    const daveLaptop = await connect(a.url, dave.wallet);
    const sent = await carol.send(dave.address, 'to all your devices');
    await dave.waitFor('chat.message', (m) => m.id === sent.id);
    await daveLaptop.waitFor('chat.message', (m) => m.id === sent.id);
    await carolPhone.waitFor('chat.message', (m) => m.id === sent.id);
    // A later send from the phone reaches the laptop through the same channel, after the first
    // message's copies: once it is there, a copy to the sending device would have been too.
    const marker = await carolPhone.send(dave.address, 'from the phone');
    await carol.waitFor('chat.message', (m) => m.id === marker.id);
    expect(carol.eventsOf('chat.message').filter((m) => m.id === sent.id)).toHaveLength(0);
  });

  it('gives a device that was offline everything it missed, in order, and pages history', async () => {
    const erin = await connect(a.url);
    const frank = Wallet.createRandom();
    const first = await connect(b.url, frank);
    const seed = await erin.send(first.address, 'before going offline');
    await first.waitFor('chat.message', (m) => m.id === seed.id);
    await first.request('chat.delivered', { peer: erin.address, ids: [seed.id] });
    const cursor = (await first.request('chat.sync', {})).cursor!;
    await first.close();

    const ids: string[] = [];
    for (let i = 0; i < 25; i++) ids.push((await erin.send(first.address, `missed ${i}`)).id);

    const again = await connect(a.url, frank);
    const collected: string[] = [];
    let after: string | undefined = cursor;
    for (;;) {
      const page: Awaited<ReturnType<typeof again.request<'chat.sync'>>> = await again.request('chat.sync', { after, limit: 10 });
      collected.push(...page.messages.map((m) => m.id));
      after = page.cursor ?? after;
      if (!page.more) break;
    }
    const unique = [...new Set(collected)];
    expect(unique).toEqual(ids);
    const texts = (await again.request('chat.history', { peer: erin.address, limit: 10 })).messages.map((m) => m.text);
    expect(texts[0]).toBe('missed 24');
    const older = await again.request('chat.history', { peer: erin.address, limit: 10, before: (await again.request('chat.history', { peer: erin.address, limit: 10 })).before! });
    expect(older.messages[0]!.text).toBe('missed 14');
    // Frank never answered Erin: her conversation is a message request of his.
    const list = await again.request('requests.list', {});
    expect(list.requests.find((c) => c.address === erin.address)?.unread).toBe(26);
  });

  it('stores a retried send once and rejects a reused client id with other content', async () => {
    const gina = await connect(a.url);
    const hank = await connect(b.url);
    const clientId = randomUUID();
    const [r1, r2] = await Promise.all([gina.send(hank.address, 'exactly once', clientId), gina.send(hank.address, 'exactly once', clientId)]);
    const r3 = await gina.send(hank.address, 'exactly once', clientId);
    expect(new Set([r1.id, r2.id, r3.id]).size).toBe(1);
    expect([r1.duplicate, r2.duplicate].sort()).toEqual([false, true]);
    expect(r3.duplicate).toBe(true);
    const rows = await query<{ n: number }>(db.url, 'select count(*)::int as n from messages where client_id = $1', [clientId]);
    expect(rows[0]!.n).toBe(1);
    await expect(gina.send(hank.address, 'different text', clientId)).rejects.toMatchObject({ body: { code: 'IDEMPOTENCY_CONFLICT' } });
    // Anything published for the retries went out before this later message.
    const marker = await gina.send(hank.address, 'after the retries');
    await hank.waitFor('chat.message', (m) => m.id === marker.id);
    // Retries are published again (the first node may have died before publishing); every
    // copy carries the one stored id, so receivers drop the extra copies by id.
    const copies = hank.eventsOf('chat.message').filter((m) => m.clientId === clientId);
    expect(copies.length).toBeGreaterThanOrEqual(1);
    expect(new Set(copies.map((m) => m.id))).toEqual(new Set([r1.id]));
    expect(new Set(copies.map((m) => m.text))).toEqual(new Set(['exactly once']));
  });

  it('refuses a reused client id with other content inside one group commit, and stores one row', async () => {
    const kim = await connect(a.url);
    const leo = await connect(b.url);
    // Pairs of frames with one client id and two texts, written in one go on one socket so the
    // node reads them in the same tick and commits them together.
    const ids = Array.from({ length: 4 }, () => randomUUID());
    const socket = (kim.ws as unknown as { _socket: import('node:net').Socket })._socket;
    socket.cork();
    const pairs = ids.map((clientId) => [kim.send(leo.address, `first ${clientId}`, clientId), kim.send(leo.address, `second ${clientId}`, clientId)] as const);
    socket.uncork();
    const settled = await Promise.all(pairs.map((pair) => Promise.allSettled(pair)));
    for (const [i, clientId] of ids.entries()) {
      const [first, second] = settled[i]!;
      const outcomes = [first, second].map((r) => (r.status === 'fulfilled' ? 'ok' : (r.reason as RequestError).body?.code));
      expect(outcomes.sort()).toEqual(['IDEMPOTENCY_CONFLICT', 'ok']);
      const winner = first.status === 'fulfilled' ? `first ${clientId}` : `second ${clientId}`;
      const rows = await query<{ body: string }>(db.url, 'select body from messages where client_id = $1', [clientId]);
      expect(rows.map((r) => r.body)).toEqual([winner]);
      const ok = [first, second].flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))[0]!;
      expect(ok.duplicate).toBe(false);
      expect((await leo.waitFor('chat.message', (m) => m.clientId === clientId)).text).toBe(winner);
    }
  });

  it('keeps history to the asking pair when conversations interleave', async () => {
    const [max, nia, oli] = await Promise.all([connect(a.url), connect(b.url), connect(a.url)]);
    // Interleaved sends in three conversations; the newest rows belong to the others each time.
    for (let i = 0; i < 3; i++) {
      await max.send(nia.address, `max-nia ${i}`);
      await nia.send(oli.address, `nia-oli ${i}`);
      await oli.send(max.address, `oli-max ${i}`);
    }
    const texts = async (c: TestClient, peer: string) => (await c.request('chat.history', { peer, limit: 10 })).messages.map((m) => m.text);
    expect(await texts(max, nia.address)).toEqual(['max-nia 2', 'max-nia 1', 'max-nia 0']);
    expect(await texts(nia, max.address)).toEqual(['max-nia 2', 'max-nia 1', 'max-nia 0']);
    expect(await texts(nia, oli.address)).toEqual(['nia-oli 2', 'nia-oli 1', 'nia-oli 0']);
    expect(await texts(max, oli.address)).toEqual(['oli-max 2', 'oli-max 1', 'oli-max 0']);
    // Someone outside a conversation naming one of its parties sees only their own (empty) one.
    const outsider = await connect(b.url);
    expect(await texts(outsider, max.address)).toEqual([]);
    expect(await texts(outsider, nia.address)).toEqual([]);
    const page = await max.request('chat.history', { peer: nia.address, limit: 2 });
    const older = await max.request('chat.history', { peer: nia.address, limit: 10, before: page.before! });
    expect(older.messages.map((m) => m.text)).toEqual(['max-nia 0']);
  });

  it('uploads a voice note that only the two parties can download', async () => {
    const ivy = await connect(a.url);
    const jack = await connect(b.url);
    const stranger = await connect(b.url);
    const audio = Buffer.from('OggS fake opus payload '.repeat(100));
    const up = await fetch(`${a.url}/media?to=${jack.address}`, { method: 'POST', headers: { authorization: `Bearer ${ivy.token}`, 'content-type': 'audio/ogg' }, body: audio });
    expect(up.status).toBe(201);
    const meta = (await up.json()) as { id: string; size: number };
    expect(meta.size).toBe(audio.length);
    const sent = await ivy.request('chat.send', { to: jack.address, clientId: randomUUID(), kind: 'audio', attachmentId: meta.id });
    const msg = await jack.waitFor('chat.message', (m) => m.id === sent.id);
    expect(msg.attachment).toEqual({ id: meta.id, mime: 'audio/ogg', size: audio.length });
    const dl = await fetch(`${b.url}/media/${meta.id}`, { headers: { authorization: `Bearer ${jack.token}` } });
    expect(dl.status).toBe(200);
    expect(Buffer.from(await dl.arrayBuffer()).equals(audio)).toBe(true);
    const denied = await fetch(`${b.url}/media/${meta.id}`, { headers: { authorization: `Bearer ${stranger.token}` } });
    expect(denied.status).toBe(404);
    // Someone else's attachment cannot be attached to your own message.
    await expect(stranger.request('chat.send', { to: jack.address, clientId: randomUUID(), kind: 'audio', attachmentId: meta.id })).rejects.toMatchObject({ body: { code: 'ATTACHMENT_INVALID' } });
    const before = await tableCounts(db.url);
    const tooBig = await fetch(`${a.url}/media?to=${jack.address}`, { method: 'POST', headers: { authorization: `Bearer ${ivy.token}`, 'content-type': 'audio/ogg' }, body: Buffer.alloc(100 * 1024) });
    expect(tooBig.status).toBe(413);
    expect(((await tooBig.json()) as { error: { code: string } }).error.code).toBe('PAYLOAD_TOO_LARGE');
    const wrongType = await fetch(`${a.url}/media?to=${jack.address}`, { method: 'POST', headers: { authorization: `Bearer ${ivy.token}`, 'content-type': 'application/pdf' }, body: Buffer.alloc(10) });
    expect(wrongType.status).toBe(415);
    const anonymous = await fetch(`${a.url}/media?to=${jack.address}`, { method: 'POST', headers: { 'content-type': 'audio/ogg' }, body: audio });
    expect(anonymous.status).toBe(401);
    expect(await tableCounts(db.url)).toEqual(before);
  });

  it('refuses bad sign-ins and bad tokens with clear codes and writes nothing', async () => {
    const before = await tableCounts(db.url);
    const w = Wallet.createRandom();
    const verify = async (m: { message: string; signature: string }) => (await postJson<{ error: { code: string } }>(`${a.url}/auth/verify`, m)).body.error?.code;

    expect(await verify(await signSiwe(a.url, w, { signer: Wallet.createRandom() }))).toBe('AUTH_BAD_SIGNATURE');
    expect(await verify(await signSiwe(a.url, w, { domain: 'evil.test' }))).toBe('AUTH_DOMAIN_MISMATCH');
    expect(await verify(await signSiwe(a.url, w, { uri: 'https://evil.test/login' }))).toBe('AUTH_URI_MISMATCH');
    expect(await verify(await signSiwe(a.url, w, { chainId: 137 }))).toBe('AUTH_CHAIN_NOT_ALLOWED');
    expect(await verify(await signSiwe(a.url, w, { expirationTime: new Date(Date.now() - 120_000).toISOString() }))).toBe('AUTH_MESSAGE_EXPIRED');
    expect(await verify(await signSiwe(a.url, w, { notBefore: new Date(Date.now() + 600_000).toISOString() }))).toBe('AUTH_MESSAGE_NOT_YET_VALID');
    expect(await verify(await signSiwe(a.url, w, { nonce: 'abcdefgh12345678' }))).toBe('AUTH_NONCE_INVALID');
    expect(await verify({ message: 'not a siwe message', signature: `0x${'11'.repeat(65)}` })).toBe('AUTH_INVALID_MESSAGE');
    expect((await postJson<{ error: { code: string } }>(`${a.url}/auth/verify`, { message: 'x' })).body.error.code).toBe('INVALID_FIELDS');

    // Replay: the first use signs in (on node a), the same message fails on node b.
    const good = await signSiwe(a.url, w);
    const first = await postJson<{ token: string }>(`${a.url}/auth/verify`, good);
    expect(first.status).toBe(200);
    expect(await verify(good)).toBe('AUTH_NONCE_INVALID');
    const replay = await postJson<{ error: { code: string } }>(`${b.url}/auth/verify`, good);
    expect(replay.status).toBe(401);
    expect(replay.body.error.code).toBe('AUTH_NONCE_INVALID');
    // The successful sign-in created exactly one user; nothing else was written.
    const after = await tableCounts(db.url);
    expect(after).toEqual({ ...before, users: before.users! + 1 });

    const upgrade = async (token: string | null, origin?: string) =>
      TestClient.connect(a.url, token ?? '', w.address, { origin: origin ?? 'http://app.test' }).then(
        (c) => (c.ws.terminate(), 'connected'),
        (e: unknown) => (e instanceof RequestError ? e.body.code : String(e)),
      );
    const expired = jwt.sign({}, TEST_JWT_SECRET, { algorithm: 'HS256', subject: w.address, issuer: 'blockrtc', expiresIn: -10 });
    expect(await upgrade(expired)).toBe('AUTH_TOKEN_EXPIRED');
    const forged = jwt.sign({}, 'another-secret-another-secret-another-secret', { algorithm: 'HS256', subject: w.address, issuer: 'blockrtc', expiresIn: 600 });
    expect(await upgrade(forged)).toBe('AUTH_TOKEN_INVALID');
    expect(await upgrade('')).toBe('AUTH_TOKEN_MISSING');
    expect(await upgrade(first.body.token, 'http://evil.test')).toBe('ORIGIN_NOT_ALLOWED');
    expect(await upgrade(first.body.token)).toBe('connected');
    const cors = await fetch(`${a.url}/auth/nonce`, { method: 'POST', headers: { origin: 'http://evil.test' } });
    expect(cors.status).toBe(403);
    expect(await tableCounts(db.url)).toEqual(after);
  });

  it('answers malformed, unknown, spoofed and oversized frames with errors and stores nothing', async () => {
    const mallory = await connect(a.url);
    const victim = await connect(b.url);
    const before = await tableCounts(db.url);
    const raw = (frame: string) => mallory.ws.send(frame);

    raw('{not json');
    raw('[1,2]');
    raw(JSON.stringify({ id: 'u1', type: 'chat.explode' }));
    // Answers come in frame order: once a later request is answered, so were those three.
    await mallory.request('presence.query', { addresses: [victim.address] });
    expect(mallory.orphanErrors.map((e) => e.code)).toEqual(['BAD_JSON', 'BAD_REQUEST']);
    await expect(mallory.request('chat.send', { to: victim.address, clientId: randomUUID(), kind: 'text', text: 'x', from: victim.address } as never)).rejects.toMatchObject({
      body: { code: 'INVALID_FIELDS' },
    });
    await expect(mallory.request('chat.send', { to: 'bob', clientId: randomUUID(), kind: 'text', text: 'x' })).rejects.toMatchObject({ body: { code: 'INVALID_FIELDS' } });
    await expect(mallory.request('chat.send', { to: victim.address, clientId: randomUUID(), kind: 'text' })).rejects.toMatchObject({ body: { code: 'INVALID_FIELDS' } });
    await expect(mallory.request('chat.send', { to: mallory.address, clientId: randomUUID(), kind: 'text', text: 'me' })).rejects.toMatchObject({ body: { code: 'SELF_MESSAGE' } });
    // Still connected after all that (the victim never wrote to nor added mallory: unknown).
    expect((await mallory.request('presence.query', { addresses: [victim.address] })).presence[0]!.online).toBeNull();
    // A message always carries the authenticated sender.
    const ok = await mallory.send(victim.address, 'who am i');
    expect((await victim.waitFor('chat.message', (m) => m.id === ok.id)).from).toBe(mallory.address);
    const afterOk = await tableCounts(db.url);
    expect(afterOk.messages).toBe(before.messages! + 1);

    raw(JSON.stringify({ id: 'big', type: 'chat.send', to: victim.address, clientId: randomUUID(), kind: 'text', text: 'x'.repeat(70 * 1024) }));
    expect(await mallory.closed).toBe(1009);
    expect(await tableCounts(db.url)).toEqual(afterOk);
  });

  it('closes a connection that keeps sending garbage with a policy code', async () => {
    const noisy = await connect(b.url);
    for (let i = 0; i < 15; i++) noisy.ws.send('garbage');
    expect(await noisy.closed).toBe(1008);
  });

  it('enforces rate limits across nodes without half-written state', async () => {
    const limited = testPrefix('rl');
    const env = { REDIS_KEY_PREFIX: limited, RATE_LIMIT_MESSAGES: '5/60', RATE_LIMIT_AUTH: '6/60', RATE_LIMIT_CONNECT: '3/60' };
    const [x, y] = await Promise.all([boot(env), boot(env)]);
    try {
      const u = Wallet.createRandom();
      const v = Wallet.createRandom();
      const tu = await signIn(x.url, u);
      const tv = await signIn(y.url, v);
      const cu = await TestClient.connect(x.url, tu.token, tu.address);
      const cv = await TestClient.connect(y.url, tv.token, tv.address);
      clients.push(cu, cv);
      const before = await tableCounts(db.url);
      const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => cu.send(tv.address, `burst ${i}`)));
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(5);
      const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(refused.map((r) => (r.reason as RequestError).body.code)).toEqual(['RATE_LIMITED', 'RATE_LIMITED', 'RATE_LIMITED']);
      expect((refused[0]!.reason as RequestError).body.retryAfterMs).toBeGreaterThan(0);
      expect((await tableCounts(db.url)).messages).toBe(before.messages! + 5);

      // Connections per IP: two used above, one more allowed (on the other node), then refused.
      const third = await TestClient.connect(y.url, tu.token, tu.address);
      clients.push(third);
      await expect(TestClient.connect(x.url, tu.token, tu.address)).rejects.toMatchObject({ body: { code: 'RATE_LIMITED' } });

      // Sign-in attempts per IP: 4 of 6 used by the two sign-ins above.
      await signIn(y.url, Wallet.createRandom());
      const usersBefore = (await tableCounts(db.url)).users;
      await expect(signIn(x.url, Wallet.createRandom())).rejects.toMatchObject({ body: { code: 'RATE_LIMITED' } });
      expect((await tableCounts(db.url)).users).toBe(usersBefore);
    } finally {
      await Promise.all([x.kill(), y.kill()]);
      if (!cluster) await clearPrefix(limited);
    }
  });

  it('refuses sends with a retry hint once too many wait for PostgreSQL, and stores every accepted one', async () => {
    const busy = await boot({ CHAT_MAX_PENDING_WRITES: '100' });
    const u = await connect(busy.url);
    const v = await connect(b.url);
    // Hold the conversation table so the node's commits wait.
    const blocker = new pg.Client({ connectionString: db.url });
    await blocker.connect();
    try {
      await blocker.query('begin');
      await blocker.query('lock table contacts in exclusive mode');
      const before = await tableCounts(db.url);
      const sends = Array.from({ length: 150 }, (_, i) => u.send(v.address, `pressure ${i}`));
      const settled: ('ok' | 'refused')[] = [];
      const results = sends.map((p) =>
        p.then(
          (r) => (settled.push('ok'), r),
          (err: RequestError) => (settled.push('refused'), err),
        ),
      );
      // Refusals come back while the accepted ones still wait for the lock.
      await expect.poll(() => settled.filter((x) => x === 'refused').length, { timeout: 10_000 }).toBe(50);
      expect(settled.filter((x) => x === 'ok')).toHaveLength(0);
      await blocker.query('commit');
      const out = await Promise.all(results);
      const refused = out.filter((r): r is RequestError => r instanceof RequestError);
      expect(refused).toHaveLength(50);
      for (const r of refused) expect(r.body).toMatchObject({ code: 'UNAVAILABLE', retryAfterMs: 1000 });
      expect((await tableCounts(db.url)).messages).toBe(before.messages! + 100);
    } finally {
      await blocker.end();
    }
  });

  it('sends a fresh token before the old one expires', async () => {
    const short = await boot({ JWT_TTL_SECONDS: '10' });
    const c = await connect(short.url);
    const hello = c.eventsOf('session.hello')[0]!;
    const fresh = await c.waitFor('session.token', () => true, 12_000);
    expect(Date.parse(fresh.expiresAt)).toBeGreaterThan(Date.parse(hello.tokenExpiresAt));
    expect(Date.parse(hello.tokenExpiresAt)).toBeGreaterThan(Date.now());
    // The fresh token opens a new connection.
    const again = await TestClient.connect(short.url, fresh.token, c.address);
    clients.push(again);
    await short.kill();
  });

  it('marks the users of a SIGKILLed node offline for their contacts within 10 s', async () => {
    const doomed = await boot();
    const watcher = await connect(a.url);
    const victim = await connect(doomed.url);
    await watcher.request('contacts.add', { address: victim.address });
    await victim.send(watcher.address, 'about to vanish');
    const killedAt = Date.now();
    await doomed.kill('SIGKILL');
    const off = await watcher.waitFor('presence.update', (p) => p.address === victim.address && p.online === false, 12_000);
    expect(Date.now() - killedAt).toBeLessThan(10_000);
    expect(off.lastSeen).not.toBeNull();
    const q = await watcher.request('presence.query', { addresses: [victim.address] });
    expect(q.presence[0]!.online).toBe(false);
  });

  it('drains on SIGTERM: not ready, clients told to reconnect, exits within the deadline', async () => {
    const n = await boot();
    const c = await connect(n.url);
    const writer = await connect(n.url);
    const peer = await connect(a.url);
    expect((await fetch(`${n.url}/readyz`)).status).toBe(200);
    // A send held in its commit keeps the node draining (and answering /readyz) until released.
    const blocker = new pg.Client({ connectionString: db.url });
    await blocker.connect();
    try {
      await blocker.query('begin');
      await blocker.query('lock table contacts in exclusive mode');
      writer.send(peer.address, 'held through the drain').catch(() => undefined);
      await expect.poll(() => lockWaiters(), { timeout: 10_000 }).toBeGreaterThan(0);
      const draining = c.waitFor('session.draining');
      const t0 = Date.now();
      void n.kill('SIGTERM');
      await draining;
      const ready = await fetch(`${n.url}/readyz`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toMatchObject({ status: 'draining' });
      expect(c.closeCode).toBeNull();
      await blocker.query('commit');
      expect(await c.closed).toBe(1012);
      expect(await n.exited).toBe(0);
      expect(Date.now() - t0).toBeLessThan(7000);
    } finally {
      await blocker.end();
    }
  });

  it('drains on SIGTERM: not ready, sends in flight answered and stored before the 1012 close, exits within the deadline', async () => {
    const n = await boot();
    const c = await connect(n.url);
    const peer = await connect(a.url);
    expect((await fetch(`${n.url}/readyz`)).status).toBe(200);
    // Hold the conversation table so the node's commits are in flight when the drain starts.
    const blocker = new pg.Client({ connectionString: db.url });
    await blocker.connect();
    try {
      await blocker.query('begin');
      await blocker.query('lock table contacts in exclusive mode');
      const answered: string[] = [];
      const sends = Promise.allSettled(Array.from({ length: 20 }, (_, i) => c.send(peer.address, `in flight ${i}`).then((r) => (answered.push(r.id), r))));
      const closedAt = c.closed.then(() => answered.length);
      await expect.poll(() => lockWaiters(), { timeout: 10_000 }).toBeGreaterThan(0);
      const draining = c.waitFor('session.draining');
      const t0 = Date.now();
      void n.kill('SIGTERM');
      await draining;
      const ready = await fetch(`${n.url}/readyz`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toMatchObject({ status: 'draining' });
      expect(answered).toHaveLength(0);
      expect(c.closeCode).toBeNull();
      await blocker.query('commit');
      const results = await sends;
      expect(results.map((r) => (r.status === 'fulfilled' ? 'ok' : String(r.reason)))).toEqual(results.map(() => 'ok'));
      const out = results.map((r) => (r as PromiseFulfilledResult<{ id: string }>).value);
      expect(await closedAt).toBe(20); // every send was answered before the close
      expect(await c.closed).toBe(1012);
      const rows = await query<{ id: string }>(db.url, `select m.id::text as id from messages m where m.sender = $1 order by m.id`, [c.address]);
      expect(rows.map((r) => r.id)).toEqual(out.map((r) => r.id));
      expect(await n.exited).toBe(0);
      expect(Date.now() - t0).toBeLessThan(7000);
    } finally {
      await blocker.end();
    }
  });

  it('serves liveness, readiness and metrics', async () => {
    expect((await fetch(`${a.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${a.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready', checks: { database: 'ok', redis: 'ok' } });
    // /metrics is on its own port, never on the public listener.
    expect((await fetch(`${a.url}/metrics`)).status).toBe(404);
    const metrics = await (await fetch(`${a.metricsUrl}/metrics`)).text();
    for (const name of ['blockrtc_ws_connections', 'blockrtc_chat_messages_in_total', 'blockrtc_chat_delivery_seconds_bucket', 'blockrtc_auth_failures_total', 'blockrtc_rate_limited_total']) {
      expect(metrics).toContain(name);
    }
    // The raw WebSocket refuses an unknown protocol version.
    const t = await signIn(a.url, Wallet.createRandom());
    const ws = new WebSocket(`${a.url.replace('http', 'ws')}/ws`, ['blockrtc.v99', `${BEARER_PROTOCOL_PREFIX}${t.token}`]);
    const status = await new Promise<number>((r) => ws.once('unexpected-response', (_q, res) => r(res.statusCode ?? 0)));
    expect(status).toBe(400);
    // The current version is accepted and negotiated.
    const current = await TestClient.connect(a.url, t.token, t.address);
    clients.push(current);
    expect(current.ws.protocol).toBe(SUBPROTOCOL);
  });
});
