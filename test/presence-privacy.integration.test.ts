import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClient } from '../testkit/client.ts';
import { startNode, migrate, type NodeProcess } from '../testkit/node.ts';
import { createTestDatabase } from '../testkit/pg.ts';
import { REDIS_URL, clearPrefix, testPrefix } from '../testkit/redis.ts';

/** How long a push that should not come is waited for. */
const QUIET_MS = 1500;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Presence goes only to the users a user shares it with (it sent them a message or added
 * them); strangers get unknown. Two signaling nodes (child processes) on PostgreSQL and Redis.
 */
describe('presence privacy across two nodes', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let prefix: string;
  let a: NodeProcess;
  let b: NodeProcess;
  const clients: TestClient[] = [];

  const boot = () =>
    startNode('signaling', {
      DATABASE_URL: db.url,
      REDIS_URL,
      REDIS_KEY_PREFIX: prefix,
      PUBLIC_ORIGIN: 'http://app.test',
      ALLOWED_ORIGINS: 'http://app.test',
      AUTH_CHAIN_IDS: '1,10',
      RATE_LIMIT_AUTH: '10000/60',
      RATE_LIMIT_CONNECT: '10000/60',
      RATE_LIMIT_MESSAGES: '1000/10',
      PRESENCE_HEARTBEAT_MS: '1000',
      PRESENCE_STALE_MS: '4000',
    });
  const connect = async (base: string, wallet?: Parameters<typeof TestClient.signInAndConnect>[1]) => {
    const c = await TestClient.signInAndConnect(base, wallet);
    clients.push(c);
    return c;
  };
  const presenceOf = async (asker: TestClient, address: string) => (await asker.request('presence.query', { addresses: [address] })).presence[0]!;
  const listed = async (asker: TestClient, address: string) => (await asker.request('contacts.list', {})).contacts.find((c) => c.address === address)!.presence;
  const updatesAbout = (c: TestClient, address: string) => c.eventsOf('presence.update').filter((p) => p.address === address);

  beforeAll(async () => {
    db = await createTestDatabase('privacy');
    await migrate(db.url);
    prefix = testPrefix('privacy');
    [a, b] = await Promise.all([boot(), boot()]);
  });

  afterAll(async () => {
    for (const c of clients) c.ws.terminate();
    await Promise.all([a, b].filter(Boolean).map((n) => n.kill('SIGKILL')));
    await clearPrefix(prefix);
    await db.drop();
  });

  it('a stranger who adds a user gets unknown and no pushes; once the user writes to them, presence and pushes', async () => {
    const x = await connect(a.url);
    const stranger = await connect(b.url);
    const added = await stranger.request('contacts.add', { address: x.address });
    expect(added.contact.presence).toEqual({ address: x.address, online: null, lastSeen: null });
    expect(await presenceOf(stranger, x.address)).toEqual({ address: x.address, online: null, lastSeen: null });
    expect(await listed(stranger, x.address)).toEqual({ address: x.address, online: null, lastSeen: null });

    // x goes offline and comes back (another node): the stranger hears nothing and learns nothing.
    await x.close();
    const x2 = await connect(b.url, x.wallet);
    await sleep(QUIET_MS);
    expect(updatesAbout(stranger, x.address)).toEqual([]);
    expect(await presenceOf(stranger, x.address)).toEqual({ address: x.address, online: null, lastSeen: null });

    // Writing to the stranger does not make the stranger's presence visible to x.
    const hello = await stranger.send(x.address, 'hello?');
    await x2.waitFor('chat.message', (m) => m.id === hello.id);
    expect(await presenceOf(x2, stranger.address)).toMatchObject({ online: true });
    expect(await presenceOf(stranger, x.address)).toMatchObject({ online: null });

    // x answers: from now on the stranger sees x and gets its pushes.
    const answer = await x2.send(stranger.address, 'hi');
    await stranger.waitFor('chat.message', (m) => m.id === answer.id);
    expect(await presenceOf(stranger, x.address)).toEqual({ address: x.address, online: true, lastSeen: null });
    expect(await listed(stranger, x.address)).toEqual({ address: x.address, online: true, lastSeen: null });
    await x2.close();
    const off = await stranger.waitFor('presence.update', (p) => p.address === x.address && p.online === false);
    expect(off.lastSeen).not.toBeNull();
    expect(await presenceOf(stranger, x.address)).toEqual(off);
    await connect(a.url, x.wallet);
    await stranger.waitFor('presence.update', (p) => p.address === x.address && p.online === true);
    expect(updatesAbout(stranger, x.address).map((p) => p.online)).toEqual([false, true]);
  });

  it('once the user adds the stranger, the stranger is told at once and gets later pushes', async () => {
    const x = await connect(b.url);
    const stranger = await connect(a.url);
    await stranger.request('contacts.add', { address: x.address });
    expect(await presenceOf(stranger, x.address)).toMatchObject({ online: null });

    await x.request('contacts.add', { address: stranger.address });
    expect(await stranger.waitFor('presence.update', (p) => p.address === x.address)).toEqual({ address: x.address, online: true, lastSeen: null });
    expect(await presenceOf(stranger, x.address)).toEqual({ address: x.address, online: true, lastSeen: null });
    expect(await listed(stranger, x.address)).toMatchObject({ online: true });
    // x sees the stranger too: the stranger added x first.
    expect(await presenceOf(x, stranger.address)).toMatchObject({ online: true });

    await x.close();
    await stranger.waitFor('presence.update', (p) => p.address === x.address && p.online === false);
  });

  it('a user always sees itself; several addresses are answered each by its own rule', async () => {
    const me = await connect(a.url);
    const friend = await connect(b.url);
    const other = await connect(b.url);
    await friend.send(me.address, 'hey');
    const { presence } = await me.request('presence.query', { addresses: [me.address, friend.address, other.address] });
    expect(presence).toEqual([
      { address: me.address, online: true, lastSeen: null },
      { address: friend.address, online: true, lastSeen: null },
      { address: other.address, online: null, lastSeen: null },
    ]);
  });
});
