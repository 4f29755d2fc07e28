import { CLOSE } from '../protocol/errors.ts';
import type { Logger } from '../infra/logger.ts';
import type { Connections } from './connections.ts';
import type { Connection } from './ws/connection.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const nextMacrotask = () => new Promise((r) => setImmediate(r));

/** The longest a closed socket gets to finish its close handshake before it is cut. */
const CLOSE_HANDSHAKE_MS = 1500;

/**
 * Draining a signaling node: every client hears `session.draining`, requests already
 * accepted finish and are answered (`writesDone`, then one turn of the event loop so the
 * answers of the last commit are written), then the sockets close with 1012, spread a
 * little so the other nodes are not hit by one wall of reconnects. It returns once every
 * socket has finished its close handshake, so whatever was written before the close frame
 * (answers, events) has left the process; only sockets that do not answer the close in
 * time are left for the caller to terminate. All of it bounded by `deadline`.
 */
export async function drainConnections(opts: { connections: Connections; writesDone: () => Promise<void>; deadline: number; reason: string; log: Logger }): Promise<void> {
  const { connections, writesDone, deadline, reason, log } = opts;
  log.info({ connections: connections.size, deadlineMs: deadline - Date.now() }, 'draining');
  const conns = connections.all();
  for (const c of conns) c.event('session.draining', { reason, reconnectInMs: 0 });
  const settle = async () => {
    // Requests read after the draining event may add writes: wait until a round adds none.
    for (let round = 0; round < 3; round++) {
      await writesDone();
      await nextMacrotask();
    }
  };
  await Promise.race([settle(), sleep(Math.max(0, deadline - Date.now()))]);
  const spread = Math.min(2000, Math.max(0, (deadline - Date.now()) / 2));
  const step = conns.length > 1 ? spread / conns.length : 0;
  const closed = conns.map(whenClosed);
  for (let i = 0; i < conns.length; i++) {
    conns[i]!.close(CLOSE.SERVICE_RESTART, 'draining');
    if (step >= 1 && i % 100 === 99) await sleep(step * 100);
  }
  await Promise.race([Promise.all(closed), sleep(Math.max(0, Math.min(CLOSE_HANDSHAKE_MS, deadline - Date.now())))]);
  const left = conns.filter((c) => c.ws.readyState !== c.ws.CLOSED).length;
  if (left > 0) log.warn({ connections: left }, 'sockets did not finish the close handshake in time');
}

function whenClosed(conn: Connection): Promise<void> {
  if (conn.ws.readyState === conn.ws.CLOSED) return Promise.resolve();
  return new Promise((resolve) => conn.ws.once('close', () => resolve()));
}
