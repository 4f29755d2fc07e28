import { expect, test } from '@playwright/test';
import { singleNodeSuite } from './support/suite.ts';
import { addContact, callAndAccept, expectReceiving, inboundStats, screenshot, useTestMedia } from './support/peers.ts';

const suite = singleNodeSuite();

test('1:1 video call: ring, accept, media both ways, mute seen by the other side, hang up, call recorded', async ({ browser }) => {
  const alice = await suite.signedIn(browser, suite.web.url, 'alice');
  const bob = await suite.signedIn(browser, suite.web.url, 'bob');
  await addContact(alice, bob.address);
  await addContact(bob, alice.address);
  await alice.page.getByTestId('composer-input').fill('Video call in a minute?');
  await alice.page.getByTestId('composer-input').press('Enter');

  await alice.page.getByTestId('call-video').click();
  const ring = bob.page.getByTestId('incoming-call');
  await expect(ring).toBeVisible();
  await expect(bob.page.getByTestId('incoming-from')).toHaveAttribute('title', alice.address);
  await expect(alice.page.getByTestId('call-screen')).toHaveAttribute('data-state', 'ringing');
  await screenshot(bob.page, 'incoming-call');
  await bob.page.getByTestId('accept-call').click();
  await expect(ring).toBeHidden();

  await expect(alice.page.getByTestId('call-screen')).toHaveAttribute('data-state', 'connected');
  await expect(bob.page.getByTestId('call-screen')).toHaveAttribute('data-state', 'connected');
  await expectReceiving(alice, [bob]);
  await expectReceiving(bob, [alice]);
  await expect(alice.page.getByTestId('call-status')).toHaveAttribute('data-state', 'connected');
  await expect(bob.page.locator(`[data-testid=tile][data-address="${alice.address}"]`)).toHaveAttribute('data-video', 'on');
  await expect(bob.page.getByTestId('call-timer')).not.toHaveText('00:00');
  await screenshot(bob.page, 'in-call-1to1');

  // Mute: Bob sees Alice's microphone as muted (call.producerState), and back.
  const aliceTileAtBob = bob.page.locator(`[data-testid=tile][data-address="${alice.address}"]`);
  await alice.page.getByTestId('toggle-mic').click();
  await expect(alice.page.getByTestId('toggle-mic')).toHaveAttribute('aria-pressed', 'true');
  await expect(aliceTileAtBob).toHaveAttribute('data-audio', 'off');
  expect(await bob.page.evaluate(() => window.blockrtc!.calls.current!.remoteTracks.find((t) => t.kind === 'audio')!.paused)).toBe(true);
  await alice.page.getByTestId('toggle-mic').click();
  await expect(aliceTileAtBob).toHaveAttribute('data-audio', 'on');
  // Camera off is seen too.
  await bob.page.getByTestId('toggle-camera').click();
  await expect(alice.page.locator(`[data-testid=tile][data-address="${bob.address}"]`)).toHaveAttribute('data-video', 'off');

  // Alice's signaling connection drops: the SDK reconnects and rejoins the call by itself.
  await alice.page.evaluate(() => {
    const w = window as unknown as { rejoins: number };
    w.rejoins = 0;
    window.blockrtc!.calls.current!.on('rejoin', () => w.rejoins++);
    window.blockrtc!.signal.reconnect();
  });
  await expect.poll(() => alice.page.evaluate(() => (window as unknown as { rejoins: number }).rejoins)).toBeGreaterThan(0);
  await expect(alice.page.getByTestId('call-screen')).toHaveAttribute('data-state', 'connected', { timeout: 30_000 });
  // Media both ways again after the rejoin, video included: Bob turns his camera back on.
  await bob.page.getByTestId('toggle-camera').click();
  await expect(alice.page.locator(`[data-testid=tile][data-address="${bob.address}"]`)).toHaveAttribute('data-video', 'on', { timeout: 15_000 });
  await expect(bob.page.locator(`[data-testid=tile][data-address="${alice.address}"]`)).toHaveAttribute('data-video', 'on', { timeout: 15_000 });
  await expectReceiving(alice, [bob]);
  await expectReceiving(bob, [alice]);

  const callId = await alice.page.getByTestId('call-screen').getAttribute('data-call-id');
  await new Promise((r) => setTimeout(r, 1500)); // a measurable duration
  await alice.page.getByTestId('hangup').click();
  await expect(alice.page.getByTestId('call-screen')).toHaveCount(0);
  // Bob is left alone and leaves by himself; the call ends.
  await expect(bob.page.getByTestId('call-screen')).toHaveCount(0, { timeout: 15_000 });

  await expect
    .poll(async () => (await suite.cluster.query<{ end_reason: string | null }>('select end_reason from calls where id = $1', [callId]))[0]?.end_reason, { timeout: 10_000 })
    .toBe('completed');
  const [call] = await suite.cluster.query<{ kind: string; initiator: string; answered_at: Date | null; ended_at: Date | null }>('select kind, initiator, answered_at, ended_at from calls where id = $1', [callId]);
  expect(call).toMatchObject({ kind: 'video', initiator: alice.address });
  expect(call!.answered_at).not.toBeNull();
  const parts = await suite.cluster.query<{ address: string; role: string; state: string; joined_at: Date | null; left_at: Date | null }>(
    'select address, role, state, joined_at, left_at from call_participants where call_id = $1 order by role',
    [callId],
  );
  expect(parts.map((p) => [p.address, p.role, p.state])).toEqual([
    [alice.address, 'initiator', 'left'],
    [bob.address, 'invitee', 'left'],
  ]);
  for (const p of parts) {
    const seconds = (p.left_at!.getTime() - p.joined_at!.getTime()) / 1000;
    expect(seconds).toBeGreaterThan(1);
    expect(seconds).toBeLessThan(120);
  }
});

test('a 640 px camera goes out as two simulcast layers and the receiver picks the one it gets; a shared screen arrives as its own tile', async ({ browser }) => {
  const carol = await suite.signedIn(browser, suite.web.url, 'carol');
  const dave = await suite.signedIn(browser, suite.web.url, 'dave');
  await useTestMedia(carol.page, { video: { width: 640, height: 480, frameRate: 15 }, maxVideoBitrate: 800_000 });
  await callAndAccept(carol, [dave]);
  await expectReceiving(dave, [carol]);
  const carolVideo = async () => (await inboundStats(dave.page)).find((s) => s.address === carol.address && s.kind === 'video');
  const prefer = (layer: number) =>
    dave.page.evaluate(async (layer) => {
      const session = window.blockrtc!.calls.current!;
      const video = session.remoteTracks.find((t) => t.kind === 'video')!;
      if (!video.simulcast) throw new Error('not simulcast');
      await session.setPreferredLayers(video.producerId, layer);
    }, layer);
  // The top layer once bandwidth estimation allows it, then the half-size one on request, then back.
  await prefer(1);
  await expect.poll(async () => (await carolVideo())?.frameWidth, { timeout: 30_000 }).toBe(640);
  await prefer(0);
  await expect.poll(async () => (await carolVideo())?.frameWidth, { timeout: 15_000 }).toBe(320);
  await prefer(1);
  await expect.poll(async () => (await carolVideo())?.frameWidth, { timeout: 15_000 }).toBe(640);
  await expect(dave.page.evaluate(() => window.blockrtc!.calls.current!.setPreferredLayers('no-such-producer', 0))).rejects.toThrow(/Not receiving/);

  // Screen share: a tile of its own on the other side, with frames flowing, gone when it stops.
  await carol.page.getByTestId('toggle-screen').click();
  await expect(carol.page.getByTestId('toggle-screen')).toHaveAttribute('aria-pressed', 'true');
  const screenTile = dave.page.locator(`[data-testid=tile].screen[data-address="${carol.address}"]`);
  await expect(screenTile).toHaveCount(1, { timeout: 15_000 });
  const screenFrames = async () => (await inboundStats(dave.page)).find((s) => s.source === 'screen')?.framesDecoded ?? 0;
  await expect.poll(screenFrames, { timeout: 15_000 }).toBeGreaterThan(0);
  const before = await screenFrames();
  await expect.poll(screenFrames, { timeout: 10_000 }).toBeGreaterThan(before);
  await carol.page.getByTestId('toggle-screen').click();
  await expect(screenTile).toHaveCount(0, { timeout: 15_000 });
  await dave.page.getByTestId('hangup').click();
});
