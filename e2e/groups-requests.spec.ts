import { expect, test, type Page } from '@playwright/test';
import { singleNodeSuite } from './support/suite.ts';
import { addContact, contact, expectReceiving, screenshot, type Peer } from './support/peers.ts';

test.describe.configure({ mode: 'serial' });

const suite = singleNodeSuite();
let alice: Peer;
let bob: Peer;
let carol: Peer;
let groupId = '';

const groupRow = (p: Peer) => p.page.locator(`[data-testid=group-row][data-group="${groupId}"]`);
const message = (page: Page, text: string) => page.getByTestId('message').filter({ hasText: text });

test('a group: created with two members, read by 2 of 2, a group call everyone hears (one joins late), a removed member gets nothing more', async ({ browser }) => {
  alice = await suite.signedIn(browser, suite.web.url, 'alice');
  bob = await suite.signedIn(browser, suite.web.url, 'bob');
  carol = await suite.signedIn(browser, suite.web.url, 'carol');
  // Bob and Carol accepted Alice (added her), so her group takes them in without an invitation.
  await addContact(bob, alice.address);
  await addContact(carol, alice.address);
  await addContact(alice, bob.address);
  await addContact(alice, carol.address);

  await alice.page.getByTestId('new-group').click();
  const dialog = alice.page.getByTestId('group-dialog');
  await dialog.getByTestId('group-name-input').fill('Weekend trip');
  await dialog.getByTestId('group-desc-input').fill('Saturday, the lake');
  await dialog.locator('[data-testid=picture-option][data-value="🌱"]').click();
  for (const p of [bob, carol]) await dialog.locator(`[data-testid=group-member-option][data-address="${p.address}"]`).check();
  await dialog.getByTestId('group-create-btn').click();
  await expect(dialog).toHaveCount(0);
  await expect(alice.page.getByTestId('group-name')).toHaveText('Weekend trip');
  groupId = (await alice.page.getByTestId('group-row').first().getAttribute('data-group')) ?? '';
  expect(groupId).toMatch(/^[0-9a-f-]{36}$/);

  // The others see the group appear and open it; its first line says who made it.
  for (const p of [bob, carol]) {
    await groupRow(p).click();
    await expect(p.page.getByTestId('group-sub')).toHaveText('3 members');
    await expect(p.page.locator('[data-testid=system-message][data-action=created]')).toContainText('created the group “Weekend trip”');
  }

  // Read by 2 of 2: both have the conversation open.
  await alice.page.getByTestId('composer-input').fill('Hello team, who brings the tent?');
  await alice.page.getByTestId('composer-input').press('Enter');
  for (const p of [bob, carol]) await expect(message(p.page, 'who brings the tent')).toBeVisible();
  const mine = message(alice.page, 'who brings the tent');
  await expect(mine.getByTestId('read-by')).toHaveText('Read by 2 of 2');
  await expect(mine).toHaveAttribute('data-status', 'read');
  await mine.getByTestId('read-by').click();
  await expect(alice.page.getByTestId('receipt-details')).toContainText('Read:');
  await bob.page.getByTestId('composer-input').fill('I will');
  await bob.page.getByTestId('composer-input').press('Enter');
  await expect(message(carol.page, 'I will').getByTestId('message-from')).toHaveAttribute('title', bob.address);

  // A group call from the group's header: Bob answers the ring, Carol says "Later" and joins late.
  await alice.page.getByTestId('group-call-audio').click();
  await expect(alice.page.getByTestId('call-screen')).toBeVisible();
  await expect(bob.page.getByTestId('incoming-group')).toHaveText('in Weekend trip');
  await bob.page.getByTestId('accept-call').click();
  await expect(carol.page.getByTestId('incoming-call')).toBeVisible();
  await carol.page.getByTestId('dismiss-call').click();
  await carol.page.getByTestId('join-group-call').click();
  for (const p of [alice, bob, carol]) await expect(p.page.getByTestId('call-screen')).toHaveAttribute('data-state', 'connected', { timeout: 30_000 });
  for (const p of [alice, bob, carol]) {
    await expectReceiving(
      p,
      [alice, bob, carol].filter((x) => x !== p),
      { video: false, timeoutMs: 45_000 },
    );
  }
  // Alice and Bob hang up; Carol, alone, leaves by herself.
  for (const p of [alice, bob]) {
    await p.page.getByTestId('hangup').click();
    await expect(p.page.getByTestId('call-screen')).toHaveCount(0);
  }
  await expect(carol.page.getByTestId('call-screen')).toHaveCount(0, { timeout: 15_000 });

  // Alice removes Carol: Carol sees it happen, then nothing more.
  await alice.page.getByTestId('group-members-btn').click();
  const panel = alice.page.getByTestId('group-panel');
  await expect(panel.getByTestId('group-member')).toHaveCount(3);
  await panel.locator(`[data-testid=group-member][data-address="${carol.address}"]`).getByTestId('member-remove').click();
  await expect(panel.getByTestId('group-member')).toHaveCount(2);
  await expect(carol.page.locator('[data-testid=system-message][data-action=removed]')).toBeVisible();
  await expect(groupRow(carol)).toHaveAttribute('data-standing', 'removed');
  await expect(carol.page.getByTestId('composer-input')).toHaveCount(0);

  await alice.page.getByTestId('composer-input').fill('Just us two now');
  await alice.page.getByTestId('composer-input').press('Enter');
  await expect(message(bob.page, 'Just us two now')).toBeVisible();
  await expect(message(alice.page, 'Just us two now').getByTestId('read-by')).toHaveText('Read by 1 of 1');
  // Bob has it; give Carol's page the same chance, then look in its SDK store too.
  await carol.page.waitForTimeout(2000);
  await expect(message(carol.page, 'Just us two now')).toHaveCount(0);
  expect(await carol.page.evaluate((key) => window.blockrtc!.chat.messages(key).map((m) => m.text), `g:${groupId}`)).not.toContain('Just us two now');

  // Admin actions in the panel: promote Bob, rename the group (seen by Bob as a system message).
  await panel.locator(`[data-testid=group-member][data-address="${bob.address}"]`).getByTestId('member-promote').click();
  await expect(panel.locator(`[data-testid=group-member][data-address="${bob.address}"]`)).toHaveAttribute('data-role', 'admin');
  await panel.getByTestId('group-rename-input').fill('Lake weekend');
  await panel.getByTestId('group-rename-btn').click();
  await expect(bob.page.getByTestId('group-name')).toHaveText('Lake weekend');
  await expect(bob.page.locator('[data-testid=system-message][data-action=updated]')).toContainText('renamed the group to “Lake weekend”');
  await screenshot(alice.page, 'group-chat');
});

test('a stranger’s message lands in Requests and, once accepted, is an ordinary conversation', async () => {
  // Carol writes to Bob, who never accepted her (being in one group does not make a contact).
  await addContact(carol, bob.address);
  await carol.page.getByTestId('composer-input').fill('Hi Bob, Carol from the lake group here');
  await carol.page.getByTestId('composer-input').press('Enter');

  await expect(bob.page.getByTestId('requests-count')).toHaveText('1');
  await expect(contact(bob, carol.address)).toHaveCount(0);
  await bob.page.getByTestId('tab-requests').click();
  const request = bob.page.locator(`[data-testid=request][data-address="${carol.address}"]`);
  await expect(request.getByTestId('request-preview')).toHaveText('Hi Bob, Carol from the lake group here');
  // Read it before deciding (the sender is not told).
  await request.click();
  await expect(bob.page.getByTestId('request-banner')).toBeVisible();
  await expect(message(bob.page, 'Carol from the lake group')).toBeVisible();
  await screenshot(bob.page, 'requests');
  await request.getByTestId('request-accept').click();
  await expect(bob.page.getByTestId('request-banner')).toHaveCount(0);
  await expect(bob.page.getByTestId('request')).toHaveCount(0);
  await expect(bob.page.getByTestId('requests-count')).toHaveCount(0);

  await bob.page.getByTestId('tab-chats').click();
  await contact(bob, carol.address).click();
  await expect(message(bob.page, 'Carol from the lake group')).toBeVisible();
  // Accepted: Bob's reply reaches Carol, and from now on she gets his receipts too (reading the
  // request before accepting it told her nothing).
  await bob.page.getByTestId('composer-input').fill('Welcome!');
  await bob.page.getByTestId('composer-input').press('Enter');
  await expect(message(carol.page, 'Welcome!')).toBeVisible();
  await carol.page.getByTestId('composer-input').fill('Thanks');
  await carol.page.getByTestId('composer-input').press('Enter');
  await expect(message(carol.page, 'Thanks')).toHaveAttribute('data-status', 'read');

  // Block and unblock from the conversation header; the list stays in step on the page.
  await bob.page.getByTestId('block-toggle').click();
  await expect(bob.page.getByTestId('block-toggle')).toHaveAttribute('data-blocked', 'true');
  await expect(contact(bob, carol.address)).toHaveAttribute('data-blocked', '');
  await carol.page.getByTestId('composer-input').fill('Are you there?');
  await carol.page.getByTestId('composer-input').press('Enter');
  await expect(message(carol.page, 'Are you there?')).toHaveAttribute('data-status', 'sent');
  await bob.page.waitForTimeout(1500);
  await expect(message(bob.page, 'Are you there?')).toHaveCount(0);
  await bob.page.getByTestId('block-toggle').click();
  await expect(bob.page.getByTestId('block-toggle')).toHaveAttribute('data-blocked', 'false');
  await expect(bob.page.getByTestId('composer-input')).toBeVisible();
});
