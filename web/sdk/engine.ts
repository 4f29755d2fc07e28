import type { TokenResponse } from '../../protocol/index.ts';
import { CLOSE } from '../../protocol/errors.ts';
import { signInWithEthereum, tokenExpiry, type Eip1193Provider, type SignInOptions } from './auth.ts';
import { BlockRtcClientError } from './errors.ts';
import { Emitter } from './events.ts';
import { SignalClient, type ReconnectPolicy, type SignalState } from './signal.ts';
import { defaultStore, randomId, readJson, writeJson, type KeyValueStore } from './storage.ts';

export interface Session {
  address: string;
  token: string;
  /** ms since epoch */
  expiresAt: number;
}

export interface EngineOptions {
  /** http(s)://host of a signaling node; defaults to the page's origin. */
  baseUrl?: string;
  /** Used for the first sign-in and, when `autoReauth` is on, when a token has expired. */
  provider?: Eip1193Provider;
  /**
   * Sign in again through the provider by itself when the stored token has expired. Off by
   * default: a wallet popup the user did not ask for is confusing, so the SDK reports
   * `auth-required` and lets the app decide.
   */
  autoReauth?: boolean;
  reconnectPolicy?: ReconnectPolicy;
  requestTimeoutMs?: number;
  /** Survives reloads: session token, sync cursor, outbox. Defaults to localStorage. */
  storage?: KeyValueStore;
  /** Per tab: the call device id. Defaults to sessionStorage. */
  tabStorage?: KeyValueStore;
  signIn?: SignInOptions;
  WebSocketImpl?: typeof WebSocket;
}

export interface EngineEvents {
  /** Signed in (or resumed), or signed out (null). */
  session: Session | null;
  state: SignalState;
}

const SESSION_KEY = 'blockrtc.session.v1';
const DEVICE_KEY = 'blockrtc.device.v1';
/** Tokens this close to expiry are treated as expired: a connection needs some life left. */
const EXPIRY_MARGIN_MS = 15_000;

/**
 * Owns the session (token, address), the SignalClient, and authenticated HTTP. Keeps the
 * newest token the server pushes so reconnects use it.
 */
export class Engine extends Emitter<EngineEvents> {
  readonly baseUrl: string;
  readonly signal: SignalClient;
  readonly storage: KeyValueStore;
  readonly tabStorage: KeyValueStore;
  private _session: Session | null = null;
  private provider: Eip1193Provider | null;
  private reauthing: Promise<Session | null> | null = null;

  constructor(private readonly options: EngineOptions = {}) {
    super();
    this.baseUrl = (options.baseUrl ?? globalThis.location.origin).replace(/\/$/, '');
    this.storage = options.storage ?? defaultStore('local');
    this.tabStorage = options.tabStorage ?? defaultStore('session');
    this.provider = options.provider ?? null;
    this.signal = new SignalClient({
      url: `${this.baseUrl.replace(/^http/, 'ws')}/ws`,
      tokens: { getToken: () => this.usableToken() },
      ...(options.reconnectPolicy ? { reconnectPolicy: options.reconnectPolicy } : {}),
      ...(options.requestTimeoutMs ? { requestTimeoutMs: options.requestTimeoutMs } : {}),
      ...(options.WebSocketImpl ? { WebSocketImpl: options.WebSocketImpl } : {}),
    });
    // The session was signed out (here, in another tab, or on the server) or reached its end.
    this.signal.on('signal.close', ({ code }) => {
      if (code === CLOSE.SESSION_ENDED) this.forgetSession();
    });
    this.signal.on('session.token', (t) => this.setSession({ address: this._session?.address ?? '', token: t.token, expiresAt: Date.parse(t.expiresAt) }));
    this.signal.on('signal.state', ({ state }) => this.emit('state', state));
    this.signal.on('signal.open', () => void this.refreshIfAging());
  }

  get session(): Session | null {
    return this._session;
  }

  get address(): string | null {
    return this._session?.address ?? null;
  }

  /** Stable for this tab (survives reloads), so a rejoin replaces this tab's old media session. */
  get deviceId(): string {
    let id = this.tabStorage.getItem(DEVICE_KEY);
    if (!id) {
      id = `w${randomId(15)}`;
      this.tabStorage.setItem(DEVICE_KEY, id);
    }
    return id;
  }

  setProvider(provider: Eip1193Provider | null): void {
    this.provider = provider;
  }

  /** Asks the wallet to sign in; stores the session. */
  async signIn(provider: Eip1193Provider | null = this.provider): Promise<Session> {
    if (!provider) throw new BlockRtcClientError('PROVIDER_ERROR', 'No wallet provider');
    this.provider = provider;
    const t: TokenResponse = await signInWithEthereum(this.baseUrl, provider, this.options.signIn);
    const session = { address: t.address, token: t.token, expiresAt: Date.parse(t.expiresAt) };
    this.setSession(session);
    return session;
  }

  /** Picks up a stored session if its token is still usable. */
  resume(): Session | null {
    const stored = readJson<Session>(this.storage, SESSION_KEY);
    if (!stored || stored.expiresAt - EXPIRY_MARGIN_MS <= Date.now()) return null;
    this.setSession(stored);
    return stored;
  }

  connect() {
    return this.signal.connect();
  }

  /** Ends the session on the server too (its other sockets close), then forgets it here. */
  signOut(): void {
    const token = this._session?.token;
    if (token) void fetch(`${this.baseUrl}/auth/signout`, { method: 'POST', headers: { authorization: `Bearer ${token}` } }).catch(() => undefined);
    this.forgetSession();
  }

  private forgetSession(): void {
    this.signal.close();
    this._session = null;
    this.storage.removeItem(SESSION_KEY);
    this.emit('session', null);
  }

  /** fetch() with the bearer token; throws BlockRtcClientError on non-2xx. */
  async fetch(path: string, init: RequestInit = {}): Promise<Response> {
    const token = await this.usableToken();
    if (!token) throw new BlockRtcClientError('AUTH_REQUIRED', 'Sign in first');
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${token}`);
    const res = await fetch(`${this.baseUrl}${path}`, { ...init, headers });
    if (!res.ok) {
      const body = (await res.json().catch(() => null)) as { error?: { code: string; message: string } } | null;
      const code = (body?.error?.code ?? 'HTTP_ERROR') as BlockRtcClientError['code'];
      throw new BlockRtcClientError(code, body?.error?.message ?? `HTTP ${res.status}`);
    }
    return res;
  }

  private setSession(session: Session): void {
    const sameUser = this._session?.address === session.address;
    this._session = session;
    writeJson(this.storage, SESSION_KEY, session);
    if (!sameUser) this.emit('session', session);
  }

  /** The token for the next connection; signs in again only if allowed. */
  private async usableToken(): Promise<string | null> {
    // Tabs share one stored session: another tab may hold a newer token (a refresh makes
    // the older ones stop working shortly after).
    const stored = readJson<Session>(this.storage, SESSION_KEY);
    if (stored && this._session && stored.address === this._session.address && stored.expiresAt > this._session.expiresAt) this._session = stored;
    const s = this._session;
    if (s && s.expiresAt - EXPIRY_MARGIN_MS > Date.now()) return s.token;
    if (!this.options.autoReauth || !this.provider) return null;
    this.reauthing ??= this.signIn().then(
      (x) => x,
      () => null,
    );
    const fresh = await this.reauthing;
    this.reauthing = null;
    return fresh?.token ?? null;
  }

  /** If the server's push was missed (e.g. while offline), ask for a fresh token. */
  private async refreshIfAging(): Promise<void> {
    const s = this._session;
    if (!s) return;
    const exp = tokenExpiry(s.token) ?? s.expiresAt;
    const left = exp - Date.now();
    if (left > 5 * 60_000) return;
    try {
      const t = await this.signal.request('session.refresh', {});
      this.setSession({ address: s.address, token: t.token, expiresAt: Date.parse(t.expiresAt) });
    } catch {
      // The server pushes session.token on its own schedule too.
    }
  }
}
