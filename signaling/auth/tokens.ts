import { createSecretKey, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { checksumAddress } from '../address.ts';
import { BlockRtcError } from '../../protocol/errors.ts';

const ISSUER = 'blockrtc';

export interface TokenClaims {
  address: string;
  expiresAt: number;
  /** The server-side session the token belongs to. */
  sid: string;
  /** The session's token generation when it was issued. */
  gen: number;
  /** The session's absolute end (ms): the token vouches for it if the store lost the session. */
  sessionExpiresAt: number;
}

/** What a token is issued for: a session at one generation, ending at `expiresAt` at the latest. */
export interface TokenSubject {
  address: string;
  sid: string;
  gen: number;
  /** The session's absolute end (ms): the token never outlives it. */
  sessionExpiresAt: number;
}

/** Short-lived HS256 session tokens; subject = checksummed wallet address. */
export class TokenService {
  /** A KeyObject made once: given a string, jsonwebtoken first tries it as a public key on every verify. */
  private readonly key: KeyObject;

  constructor(
    secret: string,
    readonly ttlSec: number,
  ) {
    this.key = createSecretKey(Buffer.from(secret, 'utf8'));
  }

  issue(s: TokenSubject): { token: string; expiresAt: number } {
    const now = Math.floor(Date.now() / 1000);
    const exp = Math.min(now + this.ttlSec, Math.floor(s.sessionExpiresAt / 1000));
    const token = jwt.sign({ iat: now, exp, sid: s.sid, gen: s.gen, sxp: Math.floor(s.sessionExpiresAt / 1000) }, this.key, { algorithm: 'HS256', subject: s.address, issuer: ISSUER });
    return { token, expiresAt: exp * 1000 };
  }

  verify(token: string): TokenClaims {
    let payload: jwt.JwtPayload | string;
    try {
      payload = jwt.verify(token, this.key, { algorithms: ['HS256'], issuer: ISSUER });
    } catch (err) {
      if (err instanceof jwt.TokenExpiredError) throw new BlockRtcError('AUTH_TOKEN_EXPIRED');
      throw new BlockRtcError('AUTH_TOKEN_INVALID');
    }
    if (
      typeof payload === 'string' ||
      typeof payload.sub !== 'string' ||
      typeof payload.exp !== 'number' ||
      typeof payload.sid !== 'string' ||
      !Number.isSafeInteger(payload.gen) ||
      !Number.isSafeInteger(payload.sxp)
    ) {
      throw new BlockRtcError('AUTH_TOKEN_INVALID');
    }
    let address: string;
    try {
      address = checksumAddress(payload.sub);
    } catch {
      throw new BlockRtcError('AUTH_TOKEN_INVALID');
    }
    if (address !== payload.sub) throw new BlockRtcError('AUTH_TOKEN_INVALID');
    return { address, expiresAt: payload.exp * 1000, sid: payload.sid, gen: payload.gen as number, sessionExpiresAt: (payload.sxp as number) * 1000 };
  }
}
