import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect, type Browser, type BrowserContext, type Page } from '@playwright/test';
import { Wallet, getBytes, type HDNodeWallet } from 'ethers';
import type { InboundStat } from '../../web/sdk/index.ts';

export interface Peer {
  name: string;
  wallet: HDNodeWallet;
  address: string;
  context: BrowserContext;
  page: Page;
}

/** Low resolution and bitrate: four peers encode and decode on a 2-core machine. */
export const TEST_VIDEO = { width: 320, height: 240, frameRate: 15 };

/**
 * A user in their own browser context, with a wallet injected as `window.ethereum`
 * (EIP-1193). personal_sign is answered by an ethers Wallet in the test process, so the
 * private key never enters the page.
 */
export async function newPeer(
  browser: Browser,
  baseUrl: string,
  name: string,
  wallet: HDNodeWallet = Wallet.createRandom(),
  /** A contract wallet: its address and chain, while `wallet` (its owner key) signs. */
  as: { address?: string; chainId?: number } = {},
): Promise<Peer> {
  const address = as.address ?? wallet.address;
  const context = await browser.newContext({ permissions: ['camera', 'microphone'], baseURL: baseUrl });
  await context.exposeFunction('__e2eSignMessage', (hex: string) => wallet.signMessage(getBytes(hex)));
  await context.addInitScript(({ address, chainHex }: { address: string; chainHex: string }) => {
    const w = window as unknown as { ethereum: unknown; __e2eSignMessage(hex: string): Promise<string> };
    w.ethereum = {
      isMetaMask: true,
      async request({ method, params }: { method: string; params?: unknown[] }) {
        if (method === 'eth_requestAccounts' || method === 'eth_accounts') return [address];
        if (method === 'eth_chainId') return chainHex;
        if (method === 'personal_sign') return w.__e2eSignMessage(String(params?.[0]));
        throw Object.assign(new Error(`unsupported ${method}`), { code: 4200 });
      },
    };
  }, { address, chainHex: `0x${(as.chainId ?? 1).toString(16)}` });
  const page = await context.newPage();
  page.on('pageerror', (err) => console.log(`[${name}] page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' || (process.env.E2E_CONSOLE && msg.type() !== 'debug')) console.log(`[${name}] ${msg.type()}: ${msg.text()}`);
  });
  await page.goto('/');
  return { name, wallet, address, context, page };
}

/** Signs in through the "MetaMask" button and waits for the main screen. */
export async function signIn(peer: Peer): Promise<void> {
  await peer.page.getByTestId('signin-metamask').click();
  await expect(peer.page.getByTestId('main')).toBeVisible();
  await expect(peer.page.getByTestId('conn-status')).toHaveAttribute('data-state', 'open');
  await useTestMedia(peer.page);
}

export async function useTestMedia(page: Page, extra: Record<string, unknown> = {}): Promise<void> {
  await page.evaluate(
    ({ video, extra }) => {
      Object.assign(window.blockrtc!.calls.defaults, { video, maxVideoBitrate: 250_000, ...extra });
    },
    { video: TEST_VIDEO, extra },
  );
}

export async function addContact(peer: Peer, address: string): Promise<void> {
  await peer.page.getByTestId('add-contact-input').fill(address);
  await peer.page.getByTestId('add-contact-btn').click();
  await expect(peer.page.locator(`[data-testid=contact][data-address="${address}"]`)).toBeVisible();
}

export function contact(peer: Peer, address: string) {
  return peer.page.locator(`[data-testid=contact][data-address="${address}"]`);
}

export async function inboundStats(page: Page): Promise<InboundStat[]> {
  return page.evaluate(() => window.blockrtc!.calls.current?.inboundStats() ?? Promise.resolve([]));
}

export async function callState(page: Page): Promise<string | null> {
  return page.evaluate(() => window.blockrtc!.calls.current?.state ?? null);
}

/**
 * Media really flows into this page: for each expected remote address, audio bytes and
 * decoded video frames grow between two samples, and so does the received audio energy
 * once Chrome reports it (a cumulative counter: silence shows as no growth over the window).
 */
export async function expectReceiving(peer: Peer, from: Peer[], opts: { video?: boolean; timeoutMs?: number } = {}): Promise<void> {
  const video = opts.video ?? true;
  const want = (s: InboundStat[]) => from.every((f) => s.some((x) => x.address === f.address && x.kind === 'audio') && (!video || s.some((x) => x.address === f.address && x.kind === 'video')));
  await expect.poll(async () => want(await inboundStats(peer.page)), { timeout: opts.timeoutMs ?? 30_000, message: `${peer.name} consumes everyone` }).toBe(true);
  const key = (x: InboundStat) => `${x.producerId}`;
  await expect
    .poll(
      async () => {
        const a = new Map((await inboundStats(peer.page)).map((x) => [key(x), x]));
        await new Promise((r) => setTimeout(r, 1200));
        const b = await inboundStats(peer.page);
        const problems: string[] = [];
        for (const f of from) {
          for (const kind of video ? (['audio', 'video'] as const) : (['audio'] as const)) {
            const now = b.find((x) => x.address === f.address && x.kind === kind && x.source !== 'screen');
            const before = now ? a.get(key(now)) : undefined;
            if (!now || !before) problems.push(`${f.name} ${kind}: no consumer`);
            else if (kind === 'audio' && now.bytesReceived <= before.bytesReceived) problems.push(`${f.name} audio: bytes stuck at ${now.bytesReceived}`);
            else if (kind === 'audio' && now.totalAudioEnergy > 0 && now.totalAudioEnergy - before.totalAudioEnergy <= 0) problems.push(`${f.name} audio: silent (energy stuck at ${now.totalAudioEnergy})`);
            else if (kind === 'video' && now.framesDecoded <= before.framesDecoded) problems.push(`${f.name} video: frames stuck at ${now.framesDecoded}`);
          }
        }
        return problems.join('; ');
      },
      { timeout: opts.timeoutMs ?? 30_000, intervals: [200, 500, 1000], message: `${peer.name} receives media from ${from.map((f) => f.name).join(', ')}` },
    )
    .toBe('');
}

/**
 * Screenshots go with the other test output; `npm run screenshots` sets SCREENSHOT_DIR to
 * docs/screenshots to regenerate the README's pictures.
 */
export async function screenshot(page: Page, name: string): Promise<void> {
  const dir = process.env.SCREENSHOT_DIR ?? join('test-results', 'screenshots');
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: join(dir, `${name}.png`) });
}

export async function closeAll(peers: Peer[]): Promise<void> {
  await Promise.all(peers.map((p) => p.context.close().catch(() => undefined)));
}

/** Starts a call from `caller` to everyone else through the SDK, and every callee accepts on screen. */
export async function callAndAccept(caller: Peer, callees: Peer[], kind: 'audio' | 'video' = 'video'): Promise<string> {
  const callId = await caller.page.evaluate(
    async ({ to, kind }) => (await window.blockrtc!.calls.start(to, kind)).callId,
    { to: callees.map((c) => c.address), kind },
  );
  for (const c of callees) {
    await expect(c.page.locator(`[data-testid=incoming-call][data-call-id="${callId}"]`)).toBeVisible();
    await c.page.getByTestId('accept-call').click();
  }
  for (const p of [caller, ...callees]) await expect(p.page.getByTestId('call-screen')).toHaveAttribute('data-state', 'connected', { timeout: 30_000 });
  return callId;
}
