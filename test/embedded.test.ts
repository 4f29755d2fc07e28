import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Wallet } from 'ethers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClient } from '../testkit/client.ts';
import { startNode, type NodeProcess } from '../testkit/node.ts';
import { freePortBase } from '../testkit/ports.ts';

/** `blockrtc all`: PGlite in a data folder and the in-process bus — no PostgreSQL, no Redis. */
describe('embedded mode', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'brtc-embedded-'));
  const env = { DATA_DIR: dataDir, JWT_SECRET: '', REDIS_URL: '', DATABASE_URL: '', SFU_WORKERS: '1', SFU_PORT_BASE: '' };
  let node: NodeProcess;

  beforeAll(async () => {
    env.SFU_PORT_BASE = String(await freePortBase(1));
    node = await startNode('all', env);
  });
  afterAll(async () => {
    await node?.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('runs chat, receipts, presence and offline delivery in one process, and keeps history across restarts', async () => {
    expect(await (await fetch(`${node.url}/readyz`)).json()).toMatchObject({ status: 'ready', checks: { database: 'ok' } });
    const alice = await TestClient.signInAndConnect(node.url);
    const bobWallet = Wallet.createRandom();
    const bob = await TestClient.signInAndConnect(node.url, bobWallet);
    await alice.request('contacts.add', { address: bob.address });
    // Bob shares his presence with Alice by adding her.
    await bob.request('contacts.add', { address: alice.address });
    const m = await alice.send(bob.address, 'hello embedded');
    expect((await bob.waitFor('chat.message', (x) => x.id === m.id)).text).toBe('hello embedded');
    await bob.request('chat.read', { peer: alice.address, upTo: m.id });
    await alice.waitFor('chat.receipt', (r) => r.status === 'read');
    await bob.close();
    await alice.waitFor('presence.update', (p) => p.address === bob.address && p.online === false);
    const missed = await alice.send(bob.address, 'while you were away');
    await alice.close();

    // A clean stop and a fresh process on the same data folder.
    await node.kill('SIGTERM');
    node = await startNode('all', env);
    const back = await TestClient.signInAndConnect(node.url, bobWallet);
    const sync = await back.request('chat.sync', { after: m.id });
    expect(sync.messages.map((x) => x.id)).toEqual([missed.id]);
    const history = await back.request('chat.history', { peer: alice.address });
    expect(history.messages.map((x) => x.text)).toEqual(['while you were away', 'hello embedded']);
    await back.close();
  });
});
