import { getAddress, hexlify, toUtf8Bytes } from 'ethers';
import { SiweMessage } from 'siwe';
import type { ErrorBody, NonceResponse, TokenResponse } from '../../protocol/index.ts';
import { BlockRtcClientError } from './errors.ts';

/** EIP-1193: what MetaMask (`window.ethereum`) and most wallets expose. */
export interface Eip1193Provider {
  request(args: { method: string; params?: unknown[] | Record<string, unknown> }): Promise<unknown>;
}

export interface SignInOptions {
  /** The line shown in the wallet above the technical fields. */
  statement?: string;
}

export async function postJson<T>(url: string, body: unknown, headers: Record<string, string> = {}): Promise<T> {
  let res: Response;
  try {
    res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  } catch (err) {
    throw new BlockRtcClientError('HTTP_ERROR', `${url}: ${(err as Error).message}`);
  }
  const json = (await res.json().catch(() => null)) as (T & { error?: ErrorBody }) | null;
  if (!res.ok || !json) {
    const error = json?.error ?? null;
    throw new BlockRtcClientError(error?.code ?? 'HTTP_ERROR', error?.message ?? `${url}: HTTP ${res.status}`, error);
  }
  return json;
}

/**
 * Sign-In with Ethereum through any EIP-1193 provider: the server hands out the nonce and the
 * exact domain/URI/chain ids it will check, the wallet signs the EIP-4361 text, the server
 * answers with a session token.
 */
export async function signInWithEthereum(baseUrl: string, provider: Eip1193Provider, opts: SignInOptions = {}): Promise<TokenResponse> {
  const accounts = (await callProvider(provider, 'eth_requestAccounts')) as string[] | null;
  const account = accounts?.[0];
  if (!account) throw new BlockRtcClientError('PROVIDER_ERROR', 'The wallet returned no account');
  const address = getAddress(account);
  const nonce = await postJson<NonceResponse>(`${baseUrl}/auth/nonce`, {});
  const chainId = await pickChainId(provider, nonce.chainIds);
  const message = new SiweMessage({
    domain: nonce.domain,
    address,
    statement: opts.statement ?? 'Sign in to BlockRTC',
    uri: nonce.uri,
    version: '1',
    chainId,
    nonce: nonce.nonce,
    issuedAt: new Date().toISOString(),
    expirationTime: nonce.expiresAt,
  }).prepareMessage();
  // personal_sign takes the message as hex-encoded UTF-8 (what MetaMask documents), account second.
  const signature = (await callProvider(provider, 'personal_sign', [hexlify(toUtf8Bytes(message)), address])) as string;
  return postJson<TokenResponse>(`${baseUrl}/auth/verify`, { message, signature });
}

/** The wallet's current chain if the server accepts it, else the server's first chain id. */
async function pickChainId(provider: Eip1193Provider, accepted: number[]): Promise<number> {
  try {
    const hex = (await provider.request({ method: 'eth_chainId' })) as string;
    const current = Number.parseInt(hex, 16);
    if (accepted.includes(current)) return current;
  } catch {
    // Some providers do not implement eth_chainId; the server's default will do.
  }
  return accepted[0] ?? 1;
}

async function callProvider(provider: Eip1193Provider, method: string, params?: unknown[]): Promise<unknown> {
  try {
    return await provider.request(params ? { method, params } : { method });
  } catch (err) {
    const e = err as { code?: number; message?: string };
    // 4001 is EIP-1193's "user rejected the request".
    throw new BlockRtcClientError('PROVIDER_ERROR', e.code === 4001 ? 'The request was rejected in the wallet' : (e.message ?? 'Wallet error'));
  }
}

/** Seconds-since-epoch `exp` of a JWT, read without verifying (the server verifies). */
export function tokenExpiry(token: string): number | null {
  const part = token.split('.')[1];
  if (!part) return null;
  try {
    const json = JSON.parse(atob(part.replace(/-/g, '+').replace(/_/g, '/'))) as { exp?: number };
    return typeof json.exp === 'number' ? json.exp * 1000 : null;
  } catch {
    return null;
  }
}
