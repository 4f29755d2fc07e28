import { Wallet } from 'ethers';
import { BlockRtcClient, WalletProvider, type AppConfig, type Eip1193Provider } from '../sdk/index.ts';
import { CallView } from './call-view.ts';
import { ChatView } from './chat-view.ts';
import { watchGateRemovals } from './gate-editor.ts';
import { h, icon, toast } from './ui.ts';

declare global {
  interface Window {
    ethereum?: Eip1193Provider;
    /** The SDK client of this page (used by end-to-end tests and for debugging). */
    blockrtc?: BlockRtcClient;
    blockrtcConfig?: AppConfig;
  }
}

const DEV_KEY = 'blockrtc.devWallet.key';
const root = document.getElementById('root')!;
const overlay = document.getElementById('overlay')!;

async function boot(): Promise<void> {
  const config = await BlockRtcClient.fetchConfig().catch((): AppConfig => ({ protocol: 1, devWallet: false, chainIds: [1], mode: 'unknown' }));
  window.blockrtcConfig = config;
  const params = new URLSearchParams(location.search);
  const client = new BlockRtcClient();
  // ?relay=1 forces TURN for every call (useful to check a TURN setup by hand).
  if (params.get('relay') === '1') client.calls.defaults.iceTransportPolicy = 'relay';
  window.blockrtc = client;
  client.engine.on('state', (state) => {
    if (state === 'auth-required') showSignIn(client, config, 'Your session has expired. Please sign in again.');
  });
  new CallView(client, overlay);
  watchGateRemovals(client, (text) => toast(text, 8000));
  if (client.resume()) {
    await startMain(client);
    return;
  }
  showSignIn(client, config);
}

let chatView: ChatView | null = null;

async function startMain(client: BlockRtcClient): Promise<void> {
  chatView?.destroy();
  chatView = new ChatView(client, root, () => {
    client.signOut();
    chatView?.destroy();
    chatView = null;
    showSignIn(client, window.blockrtcConfig!);
  });
  try {
    await client.connect();
    await chatView.loadContacts();
  } catch (err) {
    toast(`Could not connect: ${(err as Error).message}`);
  }
}

function showSignIn(client: BlockRtcClient, config: AppConfig, notice = ''): void {
  chatView?.destroy();
  chatView = null;
  const error = h('div', { class: 'error', 'data-testid': 'signin-error', role: 'alert' }, notice);
  const run = async (provider: Eip1193Provider, button: HTMLButtonElement) => {
    error.textContent = '';
    button.disabled = true;
    try {
      await client.signIn(provider);
      await startMain(client);
    } catch (err) {
      error.textContent = (err as Error).message;
    } finally {
      button.disabled = false;
    }
  };
  const hasMetaMask = Boolean(window.ethereum);
  const mm: HTMLButtonElement = h(
    'button',
    { class: 'btn-wallet', 'data-testid': 'signin-metamask', disabled: !hasMetaMask, onclick: () => window.ethereum && void run(window.ethereum, mm) },
    h('span', { class: 'icon mm' }, icon('wallet')),
    h('span', {}, h('strong', {}, 'MetaMask'), h('small', {}, hasMetaMask ? 'Sign in with your browser wallet' : 'No browser wallet found — install MetaMask')),
  );
  const card = h(
    'div',
    { class: 'signin-card' },
    h('div', { class: 'logo' }, logoSvg()),
    h('h1', {}, 'BlockRTC'),
    h('p', { class: 'lead' }, 'Private chat and calls for wallet addresses.', h('br'), 'Sign a message to prove it is you — no password, no gas.'),
    mm,
  );
  if (config.devWallet) {
    const dev: HTMLButtonElement = h(
      'button',
      { class: 'btn-wallet', 'data-testid': 'signin-dev', onclick: () => void run(devWallet(config.chainIds[0] ?? 1), dev) },
      h('span', { class: 'icon dev' }, icon('code')),
      h('span', {}, h('strong', {}, 'Development wallet'), h('small', {}, 'A throwaway key kept in this browser')),
    );
    card.append(dev, h('p', { class: 'dev-note' }, 'Development wallet: for local testing only. Its private key is stored unencrypted in this browser.'));
  }
  card.append(error, h('div', { class: 'foot' }, 'Sign-In with Ethereum (EIP-4361)'));
  root.replaceChildren(h('div', { class: 'signin', 'data-testid': 'signin' }, card));
}

/** A random key kept in localStorage, wrapped as an EIP-1193 provider. */
function devWallet(chainId: number): Eip1193Provider {
  let key = localStorage.getItem(DEV_KEY);
  if (!key) {
    key = Wallet.createRandom().privateKey;
    localStorage.setItem(DEV_KEY, key);
  }
  return new WalletProvider(new Wallet(key), chainId);
}

function logoSvg(): SVGSVGElement {
  const span = document.createElement('span');
  span.innerHTML = '<svg viewBox="0 0 24 24" fill="#fff"><path d="M4 6a3 3 0 0 1 3-3h10a3 3 0 0 1 3 3v7a3 3 0 0 1-3 3h-6l-5 4v-4a2 2 0 0 1-2-2z"/></svg>';
  return span.firstElementChild as SVGSVGElement;
}

void boot();
