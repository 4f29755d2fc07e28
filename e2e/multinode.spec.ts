import { expect, test } from '@playwright/test';
import { Cluster, type Web } from './support/servers.ts';
import { addContact, callAndAccept, closeAll, contact, expectReceiving, newPeer, signIn, type Peer } from './support/peers.ts';

let cluster: Cluster;
let a: Web;
let b: Web;
const peers: Peer[] = [];

test.beforeAll(async () => {
  test.setTimeout(120_000);
  cluster = new Cluster();
  await cluster.init();
  [a, b] = await Promise.all([cluster.signaling(), cluster.signaling(), cluster.sfu('sfu-solo')]);
});

test.afterAll(async () => {
  await closeAll(peers);
  await cluster?.stop();
});

test('peers on two signaling nodes chat and call through an SFU in its own process', async ({ browser }) => {
  const alice = await newPeer(browser, a.url, 'alice');
  const bob = await newPeer(browser, b.url, 'bob');
  peers.push(alice, bob);
  await signIn(alice);
  await signIn(bob);
  expect(await alice.page.evaluate(() => window.blockrtc!.signal.hello!.node)).not.toBe(await bob.page.evaluate(() => window.blockrtc!.signal.hello!.node));
  await addContact(alice, bob.address);
  await addContact(bob, alice.address);
  await expect(contact(alice, bob.address).getByTestId('presence')).toHaveAttribute('data-online', 'true');
  await alice.page.getByTestId('composer-input').fill('across nodes');
  await alice.page.getByTestId('composer-input').press('Enter');
  await expect(contact(bob, alice.address).getByTestId('last-message')).toHaveText('across nodes');

  const callId = await callAndAccept(alice, [bob]);
  await expectReceiving(alice, [bob]);
  await expectReceiving(bob, [alice]);
  const [row] = await cluster.query<{ sfu_node: string }>('select sfu_node from calls where id = $1', [callId]);
  expect(row!.sfu_node).toBe('sfu-solo');
  await bob.page.getByTestId('hangup').click();
  await expect(alice.page.getByTestId('call-screen')).toHaveCount(0, { timeout: 15_000 });
});
