import type { Handlers } from '../ws/dispatch.ts';
import type { SessionService } from './session-service.ts';

/** Session requests on a live connection. */
export function sessionHandlers(sessions: SessionService): Pick<Handlers, 'session.refresh' | 'session.signOut'> {
  return {
    'session.refresh': async (c) => {
      const t = await sessions.refresh(c);
      return { token: t.token, expiresAt: new Date(t.expiresAt).toISOString() };
    },
    'session.signOut': async (c) => {
      await sessions.signOut(c);
      return {};
    },
  };
}
