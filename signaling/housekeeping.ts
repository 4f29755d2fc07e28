import type { Config } from '../config/config.ts';
import type { Logger } from '../infra/logger.ts';
import type { AttachmentStore } from '../db/attachments.ts';
import { CLOSE } from '../protocol/errors.ts';
import type { SessionService } from './auth/session-service.ts';
import type { Connection } from './ws/connection.ts';
import type { PresenceService } from './presence/service.ts';
import type { PresenceStore } from './presence/store.ts';
import type { Connections } from './connections.ts';

export interface Housekeeping {
  /** The presence heartbeat stops first when draining (the other nodes sweep after us). */
  stopHeartbeat(): void;
  stop(): void;
}

/**
 * Three timers for the whole node, none per connection: one sweep over all connections each
 * second (liveness pings, fresh tokens before the current ones expire, sockets of sessions
 * ended anywhere or past their absolute end closed), the presence heartbeat, which also
 * sweeps the users of nodes that stopped beating, and the sweep of unreferenced uploads.
 */
export async function startHousekeeping(deps: {
  config: Config;
  connections: Connections;
  auth: SessionService;
  attachments: AttachmentStore;
  presenceStore: PresenceStore;
  presence: PresenceService;
  log: Logger;
}): Promise<Housekeeping> {
  const { config, connections, auth, attachments, presenceStore, presence, log } = deps;
  // Refresh at 75 % of the lifetime (at least 5 s before expiry).
  const refreshBefore = Math.max(5_000, config.auth.tokenTtlSec * 250);
  let lastPing = Date.now();
  const refreshing = new WeakSet<Connection>();
  const refresh = (conn: Connection) => {
    refreshing.add(conn);
    auth.refresh(conn).then(
      (t) => conn.event('session.token', { token: t.token, expiresAt: new Date(t.expiresAt).toISOString() }),
      // The session ended meanwhile: its sockets are closed by the ended-session poll.
      (err: unknown) => log.debug({ err, user: conn.address }, 'token refresh failed'),
    ).finally(() => refreshing.delete(conn));
  };
  let polling = false;
  const tick = setInterval(() => {
    const now = Date.now();
    const pingRound = now - lastPing >= config.ws.pingIntervalMs;
    if (pingRound) lastPing = now;
    connections.forEach((conn) => {
      if (conn.closed) return;
      if (pingRound) {
        if (!conn.alive) return void conn.ws.terminate();
        conn.alive = false;
        conn.ws.ping();
      }
      if (conn.tokenExpiresAt <= now) {
        // Past its last token: at the session's absolute end (4003), or refreshes failed
        // until the token ran out (4001, e.g. a long Redis outage).
        if (auth.canExtend(conn)) return void conn.close(CLOSE.TOKEN_EXPIRED, 'token expired');
        return void conn.close(CLOSE.SESSION_ENDED, 'session ended');
      }
      if (conn.tokenExpiresAt - now < refreshBefore && !refreshing.has(conn) && auth.canExtend(conn)) refresh(conn);
    });
    if (!polling) {
      polling = true;
      auth
        .pollEnded()
        .catch((err: unknown) => log.warn({ err }, 'ended-session poll failed'))
        .finally(() => (polling = false));
    }
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

  // Uploads no message refers to: every node sweeps (the delete is idempotent).
  const orphanTtlMs = config.http.attachmentOrphanTtlSec * 1000;
  const orphans = setInterval(
    () =>
      attachments
        .sweepOrphans(config.http.attachmentOrphanTtlSec)
        .then((n) => n > 0 && log.info({ removed: n }, 'unreferenced uploads removed'))
        .catch((err: unknown) => log.warn({ err }, 'upload sweep failed')),
    Math.min(60_000, Math.max(1000, orphanTtlMs / 2)),
  );
  orphans.unref();

  return {
    stopHeartbeat: () => clearInterval(heartbeat),
    stop: () => {
      clearInterval(tick);
      clearInterval(heartbeat);
      clearInterval(orphans);
    },
  };
}
