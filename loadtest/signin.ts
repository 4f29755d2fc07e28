/**
 * Sign-In with Ethereum as a wallet does it: ask the server for a nonce (it also names the
 * domain, URI and chain ids it accepts), sign the EIP-4361 message, exchange it for a JWT.
 * A `RATE_LIMITED` answer is waited out (its `retryAfterMs`) a few times before giving up.
 */
import { SiweMessage } from 'siwe';
import type { Wallet } from 'ethers';
import type { ErrorBody, NonceResponse, TokenResponse } from '../protocol/index.ts';
import { postJson } from './http.ts';

export class SignInError extends Error {
  constructor(readonly code: string) {
    super(code);
  }
}

async function post<T>(url: string, body: unknown, localAddress: string, origin: string | null): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const res = await postJson<T | { error: ErrorBody }>(url, body, localAddress, origin);
    if (res.status === 200) return res.body as T;
    const err = (res.body as { error?: ErrorBody }).error;
    if (res.errorCode === 'RATE_LIMITED' && attempt < 5) {
      await new Promise((r) => setTimeout(r, Math.min(60_000, err?.retryAfterMs ?? 1000) + Math.random() * 500));
      continue;
    }
    throw new SignInError(res.errorCode ?? `HTTP_${res.status}`);
  }
}

export async function signIn(base: string, wallet: Wallet, localAddress: string, origin: string | null = null): Promise<TokenResponse> {
  const n = await post<NonceResponse>(`${base}/auth/nonce`, {}, localAddress, origin);
  const message = new SiweMessage({
    domain: n.domain,
    address: wallet.address,
    statement: 'Sign in to BlockRTC',
    uri: n.uri,
    version: '1',
    chainId: n.chainIds[0] ?? 1,
    nonce: n.nonce,
    issuedAt: new Date().toISOString(),
  }).prepareMessage();
  const signature = await wallet.signMessage(message);
  return post<TokenResponse>(`${base}/auth/verify`, { message, signature }, localAddress, origin);
}
