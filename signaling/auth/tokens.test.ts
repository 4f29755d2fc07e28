import { createHmac, generateKeyPairSync } from 'node:crypto';
import { Wallet } from 'ethers';
import jwt from 'jsonwebtoken';
import { describe, expect, it } from 'vitest';
import { TokenService } from './tokens.ts';

const SECRET = 'test-secret-for-token-service-0123456789';
const address = Wallet.createRandom().address;
const now = () => Math.floor(Date.now() / 1000);

const b64 = (v: object | string) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/** A token assembled by hand: any header, any claims, HMAC-SHA256 over them with `secret` (or no signature). */
function forge(header: object, claims: object, secret: string | null = SECRET): string {
  const head = `${b64(header)}.${b64(claims)}`;
  const sig = secret === null ? '' : createHmac('sha256', secret).update(head).digest('base64url');
  return `${head}.${sig}`;
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
}

describe('TokenService', () => {
  const tokens = new TokenService(SECRET, 600);
  const claims = (over: Record<string, unknown> = {}) => ({ sub: address, iss: 'blockrtc', iat: now(), exp: now() + 600, sid: 's1', gen: 0, sxp: now() + 3600, ...over });
  const subject = { address, sid: 's1', gen: 0, sessionExpiresAt: Date.now() + 3_600_000 };

  it('accepts its own tokens and a hand-made token with the same claims', () => {
    const { token, expiresAt } = tokens.issue(subject);
    expect(tokens.verify(token)).toEqual({ address, expiresAt, sid: 's1', gen: 0, sessionExpiresAt: Math.floor(subject.sessionExpiresAt / 1000) * 1000 });
    // The forged tokens below differ from this one in one respect each.
    expect(tokens.verify(forge({ alg: 'HS256', typ: 'JWT' }, claims())).address).toBe(address);
  });

  it('refuses a token from another issuer or with no issuer', () => {
    const wrong = jwt.sign({ iat: now(), sid: 's1', gen: 0, sxp: now() + 3600 }, SECRET, { algorithm: 'HS256', subject: address, issuer: 'someone-else', expiresIn: 600 });
    const missing = jwt.sign({ iat: now(), sid: 's1', gen: 0, sxp: now() + 3600 }, SECRET, { algorithm: 'HS256', subject: address, expiresIn: 600 });
    expect(codeOf(() => tokens.verify(wrong))).toBe('AUTH_TOKEN_INVALID');
    expect(codeOf(() => tokens.verify(missing))).toBe('AUTH_TOKEN_INVALID');
    expect(codeOf(() => tokens.verify(forge({ alg: 'HS256', typ: 'JWT' }, claims({ iss: '' }))))).toBe('AUTH_TOKEN_INVALID');
  });

  it('refuses every algorithm but HS256', () => {
    // Unsigned.
    expect(codeOf(() => tokens.verify(forge({ alg: 'none', typ: 'JWT' }, claims(), null)))).toBe('AUTH_TOKEN_INVALID');
    // Same secret, stronger HMAC: still not the algorithm the service issues.
    const hs512 = jwt.sign({ iat: now(), sid: 's1', gen: 0, sxp: now() + 3600 }, SECRET, { algorithm: 'HS512', subject: address, issuer: 'blockrtc', expiresIn: 600 });
    expect(codeOf(() => tokens.verify(hs512))).toBe('AUTH_TOKEN_INVALID');
    // An RS256 header over an HMAC made with the shared secret (key confusion).
    expect(codeOf(() => tokens.verify(forge({ alg: 'RS256', typ: 'JWT' }, claims())))).toBe('AUTH_TOKEN_INVALID');
    // A real RS256 token from some other key.
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const rs256 = jwt.sign({ iat: now(), sid: 's1', gen: 0, sxp: now() + 3600 }, privateKey, { algorithm: 'RS256', subject: address, issuer: 'blockrtc', expiresIn: 600 });
    expect(codeOf(() => tokens.verify(rs256))).toBe('AUTH_TOKEN_INVALID');
  });

  it('refuses a subject that is not a checksummed address', () => {
    expect(codeOf(() => tokens.verify(forge({ alg: 'HS256', typ: 'JWT' }, claims({ sub: address.toLowerCase() }))))).toBe('AUTH_TOKEN_INVALID');
    expect(codeOf(() => tokens.verify(forge({ alg: 'HS256', typ: 'JWT' }, claims({ sub: `0x${address.slice(2).toUpperCase()}` }))))).toBe('AUTH_TOKEN_INVALID');
    expect(codeOf(() => tokens.verify(forge({ alg: 'HS256', typ: 'JWT' }, claims({ sub: 'not-an-address' }))))).toBe('AUTH_TOKEN_INVALID');
    expect(codeOf(() => tokens.verify(forge({ alg: 'HS256', typ: 'JWT' }, claims({ sub: undefined }))))).toBe('AUTH_TOKEN_INVALID');
  });

  it('refuses another secret, a tampered payload and an expired token', () => {
    expect(codeOf(() => tokens.verify(forge({ alg: 'HS256', typ: 'JWT' }, claims(), 'another-secret-entirely-0123456789')))).toBe('AUTH_TOKEN_INVALID');
    const [h, , s] = tokens.issue(subject).token.split('.');
    const other = Wallet.createRandom().address;
    expect(codeOf(() => tokens.verify(`${h}.${b64(claims({ sub: other }))}.${s}`))).toBe('AUTH_TOKEN_INVALID');
    expect(codeOf(() => tokens.verify(forge({ alg: 'HS256', typ: 'JWT' }, claims({ iat: now() - 700, exp: now() - 100 }))))).toBe('AUTH_TOKEN_EXPIRED');
  });
});
