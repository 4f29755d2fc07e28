import { expect, test } from '@playwright/test';
import { singleNodeSuite } from './support/suite.ts';
import { callAndAccept, expectReceiving, useTestMedia } from './support/peers.ts';

const suite = singleNodeSuite({ coturn: true });
const { peers } = suite;

test('relay-only call: all media goes through a real coturn', async ({ browser }) => {
  const alice = await suite.signedIn(browser, suite.web.url, 'alice');
  const bob = await suite.signedIn(browser, suite.web.url, 'bob');
  for (const p of peers) await useTestMedia(p.page, { iceTransportPolicy: 'relay' });
  await callAndAccept(alice, [bob]);
  await expectReceiving(alice, [bob]);
  await expectReceiving(bob, [alice]);
  for (const p of peers) {
    for (const direction of ['send', 'recv'] as const) {
      const stats = await p.page.evaluate((d) => window.blockrtc!.calls.current!.transportStatsJson(d), direction);
      const pair = stats.find((s) => s.type === 'candidate-pair' && s.nominated === true && s.state === 'succeeded');
      expect(pair, `${p.name} ${direction}: a selected candidate pair`).toBeTruthy();
      const local = stats.find((s) => s.id === pair!.localCandidateId);
      expect(local?.candidateType, `${p.name} ${direction}: local candidate`).toBe('relay');
    }
  }
  // The join answer carried the TURN server with short-lived credentials.
  const ice = await alice.page.evaluate(() => window.blockrtc!.calls.current!.iceServers);
  expect(ice[0]?.urls[0]).toMatch(/^turn:127\.0\.0\.1:\d+$/);
});
