import { expect, test } from '@playwright/test';
import { Wallet } from 'ethers';
import { singleNodeSuite } from './support/suite.ts';
import { addContact, contact, newPeer, screenshot, signIn } from './support/peers.ts';

test.describe.configure({ mode: 'serial' });

const suite = singleNodeSuite();
const { peers } = suite;

test('two users chat in real time with receipts, typing and presence; history survives a reload; a message to someone offline arrives at sign-in as a request', async ({ browser }) => {
  const carolWallet = Wallet.createRandom();
  // Carol exists (signed in once) and then goes offline.
  const carolFirst = await newPeer(browser, suite.web.url, 'carol', carolWallet);
  await signIn(carolFirst);
  await carolFirst.context.close();

  const alice = await newPeer(browser, suite.web.url, 'alice');
  const bob = await newPeer(browser, suite.web.url, 'bob');
  peers.push(alice, bob);
  await expect(alice.page.getByTestId('signin-dev')).toBeVisible(); // embedded mode offers the labelled dev wallet
  await screenshot(alice.page, 'sign-in');
  await signIn(alice);
  await signIn(bob);

  await addContact(alice, bob.address);
  await addContact(bob, alice.address);
  // Presence: both online, seen through the contact list.
  await expect(contact(alice, bob.address).getByTestId('presence')).toHaveAttribute('data-online', 'true');
  await expect(contact(bob, alice.address).getByTestId('presence')).toHaveAttribute('data-online', 'true');

  // Bob has another conversation open, so Alice's message is delivered but not read.
  await addContact(bob, carolWallet.address);
  await alice.page.getByTestId('composer-input').fill('Hello Bob, how are you?');
  await alice.page.getByTestId('send-btn').click();
  const aliceMsg = alice.page.getByTestId('message').filter({ hasText: 'Hello Bob' });
  await expect(aliceMsg).toHaveAttribute('data-status', 'delivered');
  await expect(contact(bob, alice.address).getByTestId('unread')).toHaveText('1');
  await expect(contact(bob, alice.address).getByTestId('last-message')).toHaveText('Hello Bob, how are you?');

  // Opening the conversation reads it.
  await contact(bob, alice.address).click();
  await expect(bob.page.getByTestId('message').filter({ hasText: 'Hello Bob' })).toBeVisible();
  await expect(aliceMsg).toHaveAttribute('data-status', 'read');
  await expect(contact(bob, alice.address).getByTestId('unread')).toHaveCount(0);

  // Typing indicator, then a reply in real time.
  await alice.page.getByTestId('composer-input').fill('Are you the');
  await expect(bob.page.getByTestId('typing')).toBeVisible();
  await alice.page.getByTestId('composer-input').fill('');
  await expect(bob.page.getByTestId('typing')).toBeHidden();
  await bob.page.getByTestId('composer-input').fill('Hi Alice!');
  await bob.page.getByTestId('composer-input').press('Enter');
  await expect(alice.page.getByTestId('message').filter({ hasText: 'Hi Alice!' })).toBeVisible();
  await expect(bob.page.getByTestId('message').filter({ hasText: 'Hi Alice!' })).toHaveAttribute('data-status', 'read');
  // A voice note: recorded from the (fake) microphone, uploaded, played back on the other side.
  await alice.page.getByTestId('record-btn').click();
  await expect(alice.page.getByTestId('recording')).toBeVisible();
  await alice.page.waitForTimeout(1500);
  await alice.page.getByTestId('record-btn').click();
  const note = bob.page.getByTestId('message').filter({ has: bob.page.getByTestId('voice-note') });
  await expect(note).toBeVisible();
  await expect(note.getByTestId('voice-note')).toHaveAttribute('src', /^blob:/);
  expect(await note.getByTestId('voice-note').evaluate((a: HTMLAudioElement) => fetch(a.src).then((r) => r.blob()).then((b) => b.size))).toBeGreaterThan(1000);
  await expect(alice.page.getByTestId('message').last()).toHaveAttribute('data-status', 'read');
  await screenshot(alice.page, 'chat');

  // A reload restores the session and the history.
  await bob.page.reload();
  await expect(bob.page.getByTestId('main')).toBeVisible();
  await contact(bob, alice.address).click();
  await expect(bob.page.getByTestId('message')).toHaveCount(3);
  await expect(bob.page.getByTestId('message').first()).toContainText('Hello Bob');

  // Presence: Bob leaves, Alice sees him go offline.
  await bob.context.close();
  await expect(contact(alice, bob.address).getByTestId('presence')).toHaveAttribute('data-online', 'false', { timeout: 15_000 });

  // A message to offline Carol arrives when she signs in again.
  await addContact(alice, carolWallet.address);
  await alice.page.getByTestId('composer-input').fill('Carol, call me when you are back');
  await alice.page.getByTestId('send-btn').click();
  const toCarol = alice.page.getByTestId('message').filter({ hasText: 'Carol, call me' });
  await expect(toCarol).toHaveAttribute('data-status', 'sent');
  const carol = await newPeer(browser, suite.web.url, 'carol-again', carolWallet);
  peers.push(carol);
  await signIn(carol);
  // Carol never wrote to Alice nor added her: the message is a request, and until Carol accepts
  // it Alice gets neither receipts nor Carol's presence.
  await expect(carol.page.getByTestId('requests-count')).toHaveText('1');
  await expect(contact(carol, alice.address)).toHaveCount(0);
  await expect(contact(alice, carolWallet.address).getByTestId('presence')).toHaveAttribute('data-online', 'unknown');
  await expect(toCarol).toHaveAttribute('data-status', 'sent');
  await carol.page.getByTestId('tab-requests').click();
  await carol.page.locator(`[data-testid=request][data-address="${alice.address}"]`).getByTestId('request-accept').click();
  await carol.page.getByTestId('tab-chats').click();
  await expect(contact(carol, alice.address).getByTestId('unread')).toHaveText('1');
  await contact(carol, alice.address).click();
  await expect(carol.page.getByTestId('message').filter({ hasText: 'Carol, call me' })).toBeVisible();
  await expect(toCarol).toHaveAttribute('data-status', 'read');
  await carol.page.getByTestId('composer-input').fill('Back now');
  await carol.page.getByTestId('composer-input').press('Enter');
  await expect(alice.page.getByTestId('message').filter({ hasText: 'Back now' })).toBeVisible();
  await expect(contact(alice, carolWallet.address).getByTestId('presence')).toHaveAttribute('data-online', 'true');
});
