import { randomUUID } from 'node:crypto';
import { Wallet, type HDNodeWallet } from 'ethers';
import { SiweMessage } from 'siwe';
import WebSocket from 'ws';
import {
  BEARER_PROTOCOL_PREFIX,
  SUBPROTOCOL,
  type ErrorBody,
  type EventMap,
  type EventType,
  type NonceResponse,
  type RequestInput,
  type RequestType,
  type ResultMap,
  type TokenResponse,
} from '../protocol/index.ts';

export class RequestError extends Error {
  constructor(readonly body: ErrorBody) {
    super(`${body.code}: ${body.message}`);
  }
}

export interface SignInOptions {
  /** Overrides for the EIP-4361 fields, to produce bad messages on purpose. */
  domain?: string;
  uri?: string;
  chainId?: number;
  nonce?: string;
  issuedAt?: string;
  expirationTime?: string;
  notBefore?: string;
  /** Sign with this wallet instead (a forged signature for the claimed address). */
  signer?: HDNodeWallet;
  /** Claim this address instead of the wallet's (a contract wallet the wallet's key owns). */
  address?: string;
  /** Turns the key's EIP-191 signature into what is sent (e.g. an ERC-6492 wrapper). */
  wrapSignature?: (signature: string) => string;
}

export async function postJson<T>(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: T }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as T };
}

/** Builds and signs a Sign-In with Ethereum message, returning what /auth/verify takes. */
export async function signSiwe(base: string, wallet: HDNodeWallet, opts: SignInOptions = {}): Promise<{ message: string; signature: string; nonce: NonceResponse }> {
  const n = await postJson<NonceResponse>(`${base}/auth/nonce`, {});
  if (n.status !== 200) throw new RequestError((n.body as unknown as { error: ErrorBody }).error);
  const msg = new SiweMessage({
    domain: opts.domain ?? n.body.domain,
    address: opts.address ?? wallet.address,
    statement: 'Sign in to BlockRTC',
    uri: opts.uri ?? n.body.uri,
    version: '1',
    chainId: opts.chainId ?? n.body.chainIds[0]!,
    nonce: opts.nonce ?? n.body.nonce,
    issuedAt: opts.issuedAt ?? new Date().toISOString(),
    ...(opts.expirationTime ? { expirationTime: opts.expirationTime } : {}),
    ...(opts.notBefore ? { notBefore: opts.notBefore } : {}),
  });
  const message = msg.prepareMessage();
  const signed = await (opts.signer ?? wallet).signMessage(message);
  const signature = opts.wrapSignature ? opts.wrapSignature(signed) : signed;
  return { message, signature, nonce: n.body };
}

export async function signIn(base: string, wallet: HDNodeWallet, opts: SignInOptions = {}): Promise<TokenResponse> {
  const { message, signature } = await signSiwe(base, wallet, opts);
  const res = await postJson<TokenResponse | { error: ErrorBody }>(`${base}/auth/verify`, { message, signature });
  if ('error' in res.body) throw new RequestError(res.body.error);
  return res.body;
}

type Waiter = { ev: string; pred: (d: unknown) => boolean; resolve: (d: unknown) => void };

/** A protocol client for tests and load generation. */
export class TestClient {
  readonly events: { ev: string; data: unknown }[] = [];
  private readonly pending = new Map<string, { resolve: (d: unknown) => void; reject: (e: Error) => void }>();
  private waiters: Waiter[] = [];
  private seq = 0;
  closeCode: number | null = null;
  closeReason = '';
  readonly closed: Promise<number>;
  /** Responses with `re: null` (frame-level errors). */
  readonly orphanErrors: ErrorBody[] = [];
  /** Called for every event as it arrives. */
  readonly listeners: ((ev: string, data: unknown) => void)[] = [];

  private constructor(
    readonly ws: WebSocket,
    readonly address: string,
  ) {
    ws.on('message', (raw) => this.onFrame(raw.toString()));
    this.closed = new Promise((resolve) =>
      ws.on('close', (code, reason) => {
        this.closeCode = code;
        this.closeReason = reason.toString();
        for (const p of this.pending.values()) p.reject(new Error(`closed ${code}`));
        this.pending.clear();
        resolve(code);
      }),
    );
  }

  static async connect(base: string, token: string, address: string, opts: { origin?: string; localAddress?: string; waitHello?: boolean } = {}): Promise<TestClient> {
    const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/ws`, [SUBPROTOCOL, `${BEARER_PROTOCOL_PREFIX}${token}`], {
      perMessageDeflate: false,
      ...(opts.origin ? { origin: opts.origin } : {}),
      ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
    });
    const client = new TestClient(ws, address);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => {
          try {
            reject(new RequestError((JSON.parse(body) as { error: ErrorBody }).error));
          } catch {
            reject(new Error(`upgrade refused: ${res.statusCode}`));
          }
        });
      });
      ws.once('error', reject);
    });
    if (opts.waitHello !== false) await client.waitFor('session.hello');
    return client;
  }

  static async signInAndConnect(base: string, wallet: HDNodeWallet = Wallet.createRandom()): Promise<TestClient & { wallet: HDNodeWallet; token: string }> {
    const t = await signIn(base, wallet);
    const c = await TestClient.connect(base, t.token, t.address);
    return Object.assign(c, { wallet, token: t.token });
  }

  private onFrame(text: string): void {
    const f = JSON.parse(text) as { re?: string | null; ok?: boolean; data?: unknown; error?: ErrorBody; ev?: string };
    if (f.ev) {
      this.events.push({ ev: f.ev, data: f.data });
      for (const l of this.listeners) l(f.ev, f.data);
      this.waiters = this.waiters.filter((w) => {
        if (w.ev !== f.ev || !w.pred(f.data)) return true;
        w.resolve(f.data);
        return false;
      });
      return;
    }
    if (f.re == null) {
      if (f.error) this.orphanErrors.push(f.error);
      return;
    }
    const p = this.pending.get(f.re);
    if (!p) return;
    this.pending.delete(f.re);
    if (f.ok) p.resolve(f.data);
    else p.reject(new RequestError(f.error!));
  }

  request<T extends RequestType>(type: T, payload: RequestInput<T>, timeoutMs = 10_000): Promise<ResultMap[T]> {
    const id = `r${++this.seq}`;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${type} timed out`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (d) => (clearTimeout(t), resolve(d as ResultMap[T])),
        reject: (e) => (clearTimeout(t), reject(e)),
      });
      this.ws.send(JSON.stringify({ id, type, ...payload }));
    });
  }

  send(to: string, text: string, clientId: string = randomUUID()): Promise<ResultMap['chat.send']> {
    return this.request('chat.send', { to, clientId, kind: 'text', text });
  }

  /** Resolves with the first matching event, including ones already received. */
  waitFor<E extends EventType>(ev: E, pred: (d: EventMap[E]) => boolean = () => true, timeoutMs = 10_000): Promise<EventMap[E]> {
    const seen = this.events.find((e) => e.ev === ev && pred(e.data as EventMap[E]));
    if (seen) return Promise.resolve(seen.data as EventMap[E]);
    return new Promise((resolve, reject) => {
      const w: Waiter = { ev, pred: pred as (d: unknown) => boolean, resolve: resolve as (d: unknown) => void };
      this.waiters.push(w);
      setTimeout(() => {
        if (!this.waiters.includes(w)) return;
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(new Error(`no ${ev} event within ${timeoutMs} ms (got: ${this.events.map((e) => e.ev).join(', ')})`));
      }, timeoutMs);
    });
  }

  eventsOf<E extends EventType>(ev: E): EventMap[E][] {
    return this.events.filter((e) => e.ev === ev).map((e) => e.data as EventMap[E]);
  }

  close(): Promise<number> {
    if (this.closeCode === null) this.ws.close();
    return this.closed;
  }
}
