import { BlockRtcError, CLOSE, type ErrorBody } from '../../protocol/errors.ts';
import { isRequestType, requestSchemas, type Request, type RequestType, type ResultMap } from '../../protocol/index.ts';
import type { Logger } from '../../infra/logger.ts';
import type { Metrics } from '../metrics.ts';
import type { Connection } from './connection.ts';

export type Handlers = { [T in RequestType]: (conn: Connection, req: Request<T>) => Promise<ResultMap[T]> };

const STRIKE_WINDOW_MS = 10_000;
const MAX_STRIKES = 10;
/** A client this far over the frame rate is not a slow bug but a flood: close at once. */
const FLOOD_FACTOR = 4;

/**
 * Turns client frames into typed requests. Bad frames get an error reply and the
 * connection stays; repeated abuse or a flood closes it with 1008.
 */
export class Dispatcher {
  constructor(
    private readonly handlers: Handlers,
    private readonly framesPerSec: number,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  handle(conn: Connection, data: Buffer, isBinary: boolean): void {
    // Frames that were already buffered when the server closed the connection count for nothing.
    if (conn.closed) return;
    const now = Date.now();
    if (now - conn.frameWindow >= 1000) {
      conn.frameWindow = now;
      conn.frames = 0;
    }
    conn.frames++;
    if (conn.frames > this.framesPerSec) {
      this.metrics.rateLimited.inc({ limit: 'frames' });
      if (conn.frames > this.framesPerSec * FLOOD_FACTOR) return this.abuse(conn, 'frame flood');
      this.reject(conn, null, new BlockRtcError('RATE_LIMITED', 'Too many frames per second', { retryAfterMs: 1000 - (now - conn.frameWindow) }), now);
      return;
    }
    if (isBinary) return this.reject(conn, null, new BlockRtcError('BAD_REQUEST', 'Binary frames are not part of the protocol'), now);

    let msg: unknown;
    try {
      msg = JSON.parse(data.toString('utf8'));
    } catch {
      return this.reject(conn, null, new BlockRtcError('BAD_JSON'), now);
    }
    if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) {
      return this.reject(conn, null, new BlockRtcError('BAD_REQUEST', 'A request is a JSON object with `id` and `type`'), now);
    }
    const rec = msg as Record<string, unknown>;
    const re = typeof rec.id === 'string' && rec.id.length > 0 && rec.id.length <= 64 ? rec.id : null;
    if (re === null) return this.reject(conn, null, new BlockRtcError('BAD_REQUEST', 'A request needs a string `id` of 1–64 characters'), now);
    if (!isRequestType(rec.type)) {
      return this.reject(conn, re, new BlockRtcError('UNKNOWN_TYPE', `Unknown request type ${JSON.stringify(String(rec.type)).slice(0, 80)}`), now);
    }
    const type = rec.type;
    const parsed = requestSchemas[type].safeParse(rec);
    if (!parsed.success) {
      const details = parsed.error.issues.slice(0, 10).map((i) => ({ path: i.path.join('.'), message: i.message }));
      return this.reject(conn, re, new BlockRtcError('INVALID_FIELDS', undefined, { details }), now);
    }
    this.metrics.framesIn.inc({ type });
    const handler = this.handlers[type] as (c: Connection, r: unknown) => Promise<unknown>;
    handler(conn, parsed.data).then(
      (result) => conn.ok(re, result),
      (err: unknown) => {
        if (err instanceof BlockRtcError) {
          this.metrics.requestErrors.inc({ code: err.code });
          conn.fail(re, err.toBody());
          return;
        }
        this.log.error({ err, type, user: conn.address }, 'request failed');
        this.metrics.requestErrors.inc({ code: 'INTERNAL' });
        const body: ErrorBody = { code: 'INTERNAL', message: 'Internal error; the request may be retried' };
        conn.fail(re, body);
      },
    );
  }

  private reject(conn: Connection, re: string | null, err: BlockRtcError, now: number): void {
    this.metrics.requestErrors.inc({ code: err.code });
    conn.fail(re, err.toBody());
    if (now - conn.strikeWindow >= STRIKE_WINDOW_MS) {
      conn.strikeWindow = now;
      conn.strikes = 0;
    }
    if (++conn.strikes > MAX_STRIKES) this.abuse(conn, 'too many bad frames');
  }

  /** Closes the connection once, with one warning per offence. */
  private abuse(conn: Connection, reason: string): void {
    if (conn.closed) return;
    this.log.warn({ user: conn.address, ip: conn.ip, reason }, 'closing abusive connection');
    conn.fail(null, new BlockRtcError('POLICY_VIOLATION', `Connection closed: ${reason}`).toBody());
    conn.close(CLOSE.POLICY, reason);
  }
}
