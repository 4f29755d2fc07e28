import { expect, test } from '@playwright/test';
import { clusterSuite } from './support/suite.ts';
import { callAndAccept, expectReceiving } from './support/peers.ts';

const suite = clusterSuite(async (cluster) => {
  const [web, ...sfus] = await Promise.all([cluster.signaling(), cluster.sfu('sfu-a'), cluster.sfu('sfu-b')]);
  return { web, sfus };
}, 120_000);
const { peers } = suite;

test('the SFU node of a running call is killed: the call moves to the other node by itself and media flows again', async ({ browser }) => {
  const { web, sfus } = suite.started;
  const alice = await suite.signedIn(browser, web.url, 'alice');
  const bob = await suite.signedIn(browser, web.url, 'bob');
  for (const p of peers) await p.page.evaluate(() => ((window as unknown as { rejoins: number }).rejoins = 0));
  const callId = await callAndAccept(alice, [bob]);
  for (const p of peers) await p.page.evaluate(() => window.blockrtc!.calls.current!.on('rejoin', () => (window as unknown as { rejoins: number }).rejoins++));
  await expectReceiving(alice, [bob]);
  await expectReceiving(bob, [alice]);

  const placement = async () => (await suite.cluster.query<{ sfu_node: string }>('select sfu_node from calls where id = $1', [callId]))[0]!.sfu_node;
  const before = await placement();
  const victim = sfus.find((n) => n.nodeId === before)!;
  await victim.kill('SIGKILL');
  const killedAt = Date.now();

  // No user action: both sides rejoin on the surviving node.
  for (const p of peers) {
    await expect.poll(() => p.page.evaluate(() => (window as unknown as { rejoins: number }).rejoins), { timeout: 20_000 }).toBeGreaterThan(0);
  }
  await expect.poll(placement, { timeout: 20_000 }).not.toBe(before);
  for (const p of peers) await expect(p.page.getByTestId('call-screen')).toHaveAttribute('data-state', 'connected', { timeout: 30_000 });
  await expectReceiving(alice, [bob], { timeoutMs: 45_000 });
  await expectReceiving(bob, [alice], { timeoutMs: 45_000 });
  console.log(`media flowing again ${((Date.now() - killedAt) / 1000).toFixed(1)} s after the SFU was killed`);
  await alice.page.getByTestId('hangup').click();
});
