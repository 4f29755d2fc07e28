import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Config } from '../../config/config.ts';
import type { UserStore } from '../../db/users.ts';
import { verifyRequest, type NonceResponse, type TokenResponse } from '../../protocol/index.ts';
import { BlockRtcError } from '../../protocol/errors.ts';
import type { NonceStore } from '../auth/nonces/store.ts';
import { newNonce, verifySiwe } from '../auth/siwe.ts';
import type { TokenService } from '../auth/tokens.ts';
import type { Metrics } from '../metrics.ts';
import { enforceLimit } from '../ratelimit/enforce.ts';
import type { RateLimiter } from '../ratelimit/limiter.ts';
import { clientIp } from './origin.ts';
import { parseBody } from './errors.ts';

export interface AuthDeps {
  config: Config;
  nonces: NonceStore;
  tokens: TokenService;
  users: UserStore;
  limiter: RateLimiter;
  metrics: Metrics;
}

/** Bearer token of an HTTP request, verified. */
export function authenticate(req: FastifyRequest, tokens: TokenService): string {
  const auth = req.headers.authorization;
  if (!auth?.startsWith('Bearer ')) throw new BlockRtcError('AUTH_TOKEN_MISSING');
  return tokens.verify(auth.slice(7)).address;
}

export function authRoutes(app: FastifyInstance, deps: AuthDeps): void {
  const { config, nonces, tokens, users, limiter, metrics } = deps;

  const limit = async (req: FastifyRequest) => {
    const id = clientIp(req.raw, config.http.trustProxy);
    await enforceLimit(limiter, metrics, { name: 'auth', metric: 'auth', id, rule: config.limits.auth, message: 'Too many sign-in attempts from this address' });
  };

  app.post('/auth/nonce', async (req): Promise<NonceResponse> => {
    await limit(req);
    const nonce = newNonce();
    await nonces.issue(nonce, config.auth.nonceTtlSec);
    return {
      nonce,
      domain: config.auth.domain,
      uri: config.auth.uri,
      chainIds: config.auth.chainIds,
      expiresAt: new Date(Date.now() + config.auth.nonceTtlSec * 1000).toISOString(),
    };
  });

  app.post('/auth/verify', async (req): Promise<TokenResponse> => {
    await limit(req);
    const body = parseBody(verifyRequest, req.body);
    try {
      const { address, nonce } = verifySiwe(body.message, body.signature, {
        domain: config.auth.domain,
        uri: config.auth.uri,
        chainIds: config.auth.chainIds,
        maxAgeSec: config.auth.nonceTtlSec,
        skewSec: 60,
      });
      // Consumed only after the signature checks out, atomically: a replay finds it gone.
      if (!(await nonces.consume(nonce))) throw new BlockRtcError('AUTH_NONCE_INVALID');
      await users.signedIn(address);
      const { token, expiresAt } = tokens.issue(address);
      return { token, address, expiresAt: new Date(expiresAt).toISOString() };
    } catch (err) {
      if (err instanceof BlockRtcError) metrics.authFailures.inc({ code: err.code });
      throw err;
    }
  });
}
