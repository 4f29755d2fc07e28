import { CLOSE } from '../protocol/errors.ts';
import type { Logger } from '../infra/logger.ts';
import type { Sessions } from './sessions.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Draining a signaling node: every client hears `session.draining`, requests already
 * accepted finish and are answered (`writesDone`), then the sockets close with 1012,
 * spread a little so the other nodes are not hit by one wall of reconnects. All of it
 * bounded by `deadline`.
 */
export async function drainConnections(opts: { sessions: Sessions; writesDone: () => Promise<void>; deadline: number; reason: string; log: Logger }): Promise<void> {
  const { sessions, writesDone, deadline, reason, log } = opts;
  log.info({ connections: sessions.size, deadlineMs: deadline - Date.now() }, 'draining');
  const conns = sessions.all();
  for (const c of conns) c.event('session.draining', { reason, reconnectInMs: 0 });
  await Promise.race([writesDone(), sleep(Math.max(0, deadline - Date.now()))]);
  const spread = Math.min(2000, Math.max(0, (deadline - Date.now()) / 2));
  const step = conns.length > 1 ? spread / conns.length : 0;
  for (let i = 0; i < conns.length; i++) {
    conns[i]!.close(CLOSE.SERVICE_RESTART, 'draining');
    if (step >= 1 && i % 100 === 99) await sleep(step * 100);
  }
}
