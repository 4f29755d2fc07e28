import type { Config } from '../config/config.ts';
import type { Logger } from '../infra/logger.ts';
import type { TokenService } from './auth/tokens.ts';
import type { PresenceService } from './presence/service.ts';
import type { PresenceStore } from './presence/store.ts';
import type { Sessions } from './sessions.ts';

export interface Housekeeping {
  /** The presence heartbeat stops first when draining (the other nodes sweep after us). */
  stopHeartbeat(): void;
  stop(): void;
}

/**
 * Two timers for the whole node, none per connection: one sweep over all connections each
 * second (liveness pings, fresh tokens before the current ones expire), and the presence
 * heartbeat, which also sweeps the users of nodes that stopped beating.
 */
export async function startHousekeeping(deps: {
  config: Config;
  sessions: Sessions;
  tokens: TokenService;
  presenceStore: PresenceStore;
  presence: PresenceService;
  log: Logger;
}): Promise<Housekeeping> {
  const { config, sessions, tokens, presenceStore, presence, log } = deps;
  // Refresh at 75 % of the lifetime (at least 5 s before expiry).
  const refreshBefore = Math.max(5_000, config.auth.tokenTtlSec * 250);
  let lastPing = Date.now();
  const tick = setInterval(() => {
    const now = Date.now();
    const pingRound = now - lastPing >= config.ws.pingIntervalMs;
    if (pingRound) lastPing = now;
    sessions.forEach((conn) => {
      if (conn.closed) return;
      if (pingRound) {
        if (!conn.alive) return void conn.ws.terminate();
        conn.alive = false;
        conn.ws.ping();
      }
      if (conn.tokenExpiresAt - now < refreshBefore) {
        const t = tokens.issue(conn.address);
        conn.tokenExpiresAt = t.expiresAt;
        conn.event('session.token', { token: t.token, expiresAt: new Date(t.expiresAt).toISOString() });
      }
    });
  }, 1000);
  tick.unref();

  const beat = async () => {
    const now = Date.now();
    await presenceStore.heartbeat(now);
    for (const { user, lastSeen } of await presenceStore.sweep(now)) await presence.wentOffline(user, lastSeen);
  };
  const heartbeat = setInterval(() => beat().catch((err: unknown) => log.warn({ err }, 'presence heartbeat failed')), config.presence.heartbeatMs);
  heartbeat.unref();
  await beat().catch((err: unknown) => log.warn({ err }, 'first presence heartbeat failed'));

  return {
    stopHeartbeat: () => clearInterval(heartbeat),
    stop: () => {
      clearInterval(tick);
      clearInterval(heartbeat);
    },
  };
}
