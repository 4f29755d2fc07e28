import type { Handlers } from '../ws/dispatch.ts';
import type { TokenService } from './tokens.ts';

/** Session requests on a live connection. */
export function sessionHandlers(tokens: TokenService): Pick<Handlers, 'session.refresh'> {
  return {
    'session.refresh': async (c) => {
      const t = tokens.issue(c.address);
      c.tokenExpiresAt = t.expiresAt;
      return { token: t.token, expiresAt: new Date(t.expiresAt).toISOString() };
    },
  };
}
