import { expect, test } from '@playwright/test';
import { singleNodeSuite } from './support/suite.ts';
import { callAndAccept, expectReceiving, screenshot, type Peer } from './support/peers.ts';

const suite = singleNodeSuite();
const { peers } = suite;

test('group video call with 4 peers: everyone receives everyone', async ({ browser }) => {
  for (const name of ['alice', 'bob', 'carol', 'dave']) await suite.signedIn(browser, suite.web.url, name);
  const [alice, ...others] = peers as [Peer, ...Peer[]];
  await callAndAccept(alice, others);
  for (const p of peers) await expectReceiving(p, peers.filter((x) => x !== p), { timeoutMs: 45_000 });
  for (const p of peers) await expect(p.page.getByTestId('tile')).toHaveCount(3);
  // Fake audio beeps on every peer: whoever the SFU picks as the active speaker is highlighted on
  // every page, as a grid tile for the others and as the local picture for the speaker, and all
  // pages name the same person (the pick may move, so all pages are read together).
  const highlighted = (p: Peer) =>
    p.page.evaluate((self) => {
      const tiles = [...document.querySelectorAll('[data-testid=tile].speaking')].map((t) => t.getAttribute('data-address'));
      const own = document.querySelectorAll('[data-testid=local-pip].speaking').length > 0 ? [self] : [];
      return [...tiles, ...own];
    }, p.address);
  await expect
    .poll(
      async () => {
        const seen = await Promise.all(peers.map(highlighted));
        if (seen.some((s) => s.length !== 1)) return `not one highlight per page: ${JSON.stringify(seen)}`;
        const speakers = new Set(seen.map((s) => s[0]));
        return speakers.size === 1 && peers.some((p) => speakers.has(p.address)) ? 'agreed' : `pages disagree: ${JSON.stringify(seen)}`;
      },
      { timeout: 20_000, intervals: [250, 500, 1000] },
    )
    .toBe('agreed');
  await screenshot(alice.page, 'in-call-group');
  await alice.page.getByTestId('hangup').click();
  // The others stay together: three people still in the call.
  await expect(alice.page.getByTestId('call-screen')).toHaveCount(0);
  await expect(others[0]!.page.getByTestId('tile')).toHaveCount(2, { timeout: 15_000 });
});
