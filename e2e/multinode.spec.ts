import { expect, test } from '@playwright/test';
import { clusterSuite } from './support/suite.ts';
import { addContact, callAndAccept, contact, expectReceiving } from './support/peers.ts';

const suite = clusterSuite(async (cluster) => {
  const [a, b] = await Promise.all([cluster.signaling(), cluster.signaling(), cluster.sfu('sfu-solo')]);
  return { a, b };
}, 120_000);

test('peers on two signaling nodes chat and call through an SFU in its own process; what is sent while a node is down goes out once when it is back', async ({ browser }) => {
  let { a } = suite.started;
  const { b } = suite.started;
  const alice = await suite.signedIn(browser, a.url, 'alice');
  const bob = await suite.signedIn(browser, b.url, 'bob');
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
  const [row] = await suite.cluster.query<{ sfu_node: string }>('select sfu_node from calls where id = $1', [callId]);
  expect(row!.sfu_node).toBe('sfu-solo');
  await bob.page.getByTestId('hangup').click();
  await expect(alice.page.getByTestId('call-screen')).toHaveCount(0, { timeout: 15_000 });

  // Alice's signaling node dies. What she sends meanwhile waits in her outbox and goes out
  // exactly once when the node is back.
  await a.node.kill('SIGKILL');
  await expect(alice.page.getByTestId('conn-status')).toHaveAttribute('data-state', 'reconnecting', { timeout: 15_000 });
  await alice.page.getByTestId('composer-input').fill('sent while offline');
  await alice.page.getByTestId('composer-input').press('Enter');
  const pending = alice.page.getByTestId('message').filter({ hasText: 'sent while offline' });
  await expect(pending).toHaveAttribute('data-status', 'queued');
  a = await suite.cluster.restart(a);
  await expect(alice.page.getByTestId('conn-status')).toHaveAttribute('data-state', 'open', { timeout: 30_000 });
  await expect(contact(bob, alice.address).getByTestId('last-message')).toHaveText('sent while offline', { timeout: 15_000 });
  // Sent (and maybe already delivered or read), not failed.
  await expect(pending).toHaveAttribute('data-status', /^(sent|delivered|read)$/);
  const stored = await suite.cluster.query<{ n: number }>("select count(*)::int as n from messages where body = 'sent while offline'");
  expect(stored[0]!.n).toBe(1);
});
