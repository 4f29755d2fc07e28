import { createSecretKey } from 'node:crypto';
import { Wallet } from 'ethers';
import jwt from 'jsonwebtoken';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { BlockRtcError } from '../../protocol/errors.ts';
import { TokenService } from './tokens.ts';

const secret = 'test-secret-0123456789abcdef';
const key = createSecretKey(Buffer.from(secret, 'utf8'));
const address = Wallet.createRandom().address;
const SESSION_END = Date.parse('2031-01-01T00:00:00Z');
const subject = { address, sid: 's1', gen: 1, sessionExpiresAt: SESSION_END };

const codeOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    return e instanceof BlockRtcError ? e.code : String(e);
  }
  return 'ok';
};

afterEach(() => {
  vi.useRealTimers();
});

describe('TokenService', () => {
  it('issues a token that verifies to its address, expiring after the time to live', () => {
    vi.useFakeTimers({ now: Date.parse('2030-01-01T00:00:00.500Z') });
    const tokens = new TokenService(secret, 900);
    const { token, expiresAt } = tokens.issue(subject);
    const second = Date.parse('2030-01-01T00:00:00.000Z');
    expect(expiresAt).toBe(second + 900_000);
    expect(tokens.verify(token)).toEqual({ address, expiresAt, sid: 's1', gen: 1, sessionExpiresAt: SESSION_END });
    expect(tokens.ttlSec).toBe(900);
    const decoded = jwt.decode(token, { complete: true })!;
    expect(decoded.header.alg).toBe('HS256');
    expect(decoded.payload).toEqual({ iat: second / 1000, exp: second / 1000 + 900, sub: address, iss: 'blockrtc', sid: 's1', gen: 1, sxp: SESSION_END / 1000 });
  });

  it('refuses an expired token as expired', () => {
    vi.useFakeTimers({ now: Date.parse('2030-01-01T00:00:00Z') });
    const tokens = new TokenService(secret, 60);
    const { token } = tokens.issue(subject);
    vi.setSystemTime(Date.parse('2030-01-01T00:00:59Z'));
    expect(codeOf(() => tokens.verify(token))).toBe('ok');
    vi.setSystemTime(Date.parse('2030-01-01T00:01:01Z'));
    expect(codeOf(() => tokens.verify(token))).toBe('AUTH_TOKEN_EXPIRED');
  });

  it('refuses tokens of another key, issuer or algorithm, and garbage', () => {
    const tokens = new TokenService(secret, 60);
    const other = new TokenService('another-secret-0123456789', 60).issue(subject).token;
    expect(codeOf(() => tokens.verify(other))).toBe('AUTH_TOKEN_INVALID');
    const foreign = jwt.sign({ sid: 's1', gen: 1, sxp: SESSION_END / 1000 }, key, { algorithm: 'HS256', subject: address, issuer: 'someone-else', expiresIn: 60 });
    expect(codeOf(() => tokens.verify(foreign))).toBe('AUTH_TOKEN_INVALID');
    const hs384 = jwt.sign({ sid: 's1', gen: 1, sxp: SESSION_END / 1000 }, key, { algorithm: 'HS384', subject: address, issuer: 'blockrtc', expiresIn: 60 });
    expect(codeOf(() => tokens.verify(hs384))).toBe('AUTH_TOKEN_INVALID');
    expect(codeOf(() => tokens.verify('not.a.token'))).toBe('AUTH_TOKEN_INVALID');
    expect(codeOf(() => tokens.verify(''))).toBe('AUTH_TOKEN_INVALID');
  });

  it('refuses well-signed tokens without a proper subject or expiry', () => {
    const tokens = new TokenService(secret, 60);
    const sign = (payload: object, opts: jwt.SignOptions = {}) => jwt.sign({ sid: 's1', gen: 1, sxp: SESSION_END / 1000, ...payload }, key, { algorithm: 'HS256', issuer: 'blockrtc', ...opts });
    expect(codeOf(() => tokens.verify(sign({}, { expiresIn: 60 })))).toBe('AUTH_TOKEN_INVALID');
    expect(codeOf(() => tokens.verify(sign({ sub: 42 }, { expiresIn: 60 })))).toBe('AUTH_TOKEN_INVALID');
    expect(codeOf(() => tokens.verify(sign({}, { subject: address })))).toBe('AUTH_TOKEN_INVALID');
    expect(codeOf(() => tokens.verify(sign({}, { subject: 'not-an-address', expiresIn: 60 })))).toBe('AUTH_TOKEN_INVALID');
    expect(codeOf(() => tokens.verify(sign({}, { subject: address.toLowerCase(), expiresIn: 60 })))).toBe('AUTH_TOKEN_INVALID');
    expect(codeOf(() => tokens.verify(sign({}, { subject: address, expiresIn: 60 })))).toBe('ok');
    expect(codeOf(() => tokens.verify(jwt.sign('just a string', key, { algorithm: 'HS256' })))).toBe('AUTH_TOKEN_INVALID');
  });
});
