import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Config } from '../../config/config.ts';
import type { UserStore } from '../../db/users.ts';
import { verifyRequest, type NonceResponse, type TokenResponse } from '../../protocol/index.ts';
import { BlockRtcError } from '../../protocol/errors.ts';
import type { NonceStore } from '../auth/nonces/store.ts';
import { newNonce, verifySiweWallet } from '../auth/siwe.ts';
import type { ContractSignatureChecker } from '../chain/signatures.ts';
import type { SessionService } from '../auth/session-service.ts';
import type { TokenClaims } from '../auth/tokens.ts';
import type { Metrics } from '../metrics.ts';
import { enforceLimit } from '../ratelimit/enforce.ts';
import type { RateLimiter } from '../ratelimit/limiter.ts';
import { clientIp, limitKey } from './origin.ts';
import { parseBody } from './errors.ts';

export interface AuthDeps {
  config: Config;
  nonces: NonceStore;
  sessions: SessionService;
  users: UserStore;
  limiter: RateLimiter;
  metrics: Metrics;
  /** Contract wallets' answers (EIP-1271 / ERC-6492) for signatures no key matches. */
  wallets: ContractSignatureChecker;
}

function bearer(req: FastifyRequest): string {
  const auth = req.headers.authorization;
  if (!auth?.startsWith('Bearer ')) throw new BlockRtcError('AUTH_TOKEN_MISSING');
  return auth.slice(7);
}

/** Bearer token of an HTTP request, verified, of a live session and its current generation. */
export async function authenticate(req: FastifyRequest, sessions: SessionService): Promise<TokenClaims> {
  return sessions.check(bearer(req));
}

export function authRoutes(app: FastifyInstance, deps: AuthDeps): void {
  const { config, nonces, sessions, users, limiter, metrics, wallets } = deps;

  const limit = async (req: FastifyRequest) => {
    const id = limitKey(clientIp(req.raw, config.http.trustProxy));
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
      const rules = { domain: config.auth.domain, uri: config.auth.uri, chainIds: config.auth.chainIds, maxAgeSec: config.auth.nonceTtlSec, skewSec: 60 };
      const { address, nonce } = await verifySiweWallet(body.message, body.signature, rules, wallets);
      // Consumed only after the signature checks out, atomically: a replay finds it gone.
      if (!(await nonces.consume(nonce))) throw new BlockRtcError('AUTH_NONCE_INVALID');
      await users.signedIn(address);
      const { token, expiresAt } = await sessions.signIn(address);
      return { token, address, expiresAt: new Date(expiresAt).toISOString() };
    } catch (err) {
      if (err instanceof BlockRtcError) metrics.authFailures.inc({ code: err.code });
      throw err;
    }
  });

  /**
   * Ends the session of the bearer token (any unexpired token of it, even one a refresh
   * replaced): its tokens stop working and its sockets close on every node.
   */
  app.post('/auth/signout', async (req, reply) => {
    await limit(req);
    await sessions.signOutWithToken(bearer(req));
    return reply.status(204).send();
  });
}
