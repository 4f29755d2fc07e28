import { pino, type DestinationStream, type Logger } from 'pino';
import type { Config } from '../config/config.ts';

export type { Logger };

/**
 * Fields that may hold secrets or user content, wherever a caller puts them: tokens,
 * signatures, message bodies, SQL text and parameters.
 */
export const REDACTED_PATHS = [
  'token',
  '*.token',
  'signature',
  '*.signature',
  'authorization',
  '*.authorization',
  'jwtSecret',
  '*.jwtSecret',
  'text',
  '*.text',
  'body',
  '*.body',
  'params',
  '*.params',
  'parameters',
  '*.parameters',
  'values',
  '*.values',
  'query',
  '*.query',
  'message.text',
  'req.headers.authorization',
  'req.headers["sec-websocket-protocol"]',
];

/** Keys of an error object that may carry SQL, parameters or row values (pg's `detail` names key values). */
const UNSAFE_ERROR_KEYS = new Set(['params', 'parameters', 'query', 'values', 'detail', 'where', 'internalQuery', 'hint', 'body', 'text']);

/**
 * Errors are logged by name, code and the first line of their message only: a database
 * driver's error message can quote the statement and every parameter of a failed batch
 * (drizzle: `Failed query: …\nparams: …`), and its stack begins with that message.
 */
export function safeError(err: unknown, depth = 0): unknown {
  if (!(err instanceof Error)) return typeof err === 'string' ? { message: firstLine(err) } : err;
  const out: Record<string, unknown> = { type: err.name, message: firstLine(err.message) };
  for (const [k, v] of Object.entries(err)) {
    if (UNSAFE_ERROR_KEYS.has(k) || k === 'cause' || typeof v === 'object' || typeof v === 'function') continue;
    out[k] = typeof v === 'string' ? firstLine(v) : v;
  }
  const frames = (err.stack ?? '').split('\n').filter((l) => l.startsWith('    at '));
  if (frames.length) out.stack = frames.slice(0, 12).join('\n');
  if (err.cause !== undefined && depth < 3) out.cause = safeError(err.cause, depth + 1);
  return out;
}

function firstLine(s: string): string {
  const line = s.split('\n', 1)[0]!;
  // `Failed query: <sql>` is drizzle's wrapper; the SQL text is of no use in a log line.
  if (line.startsWith('Failed query:')) return 'Failed query';
  return line.length > 300 ? `${line.slice(0, 300)}…` : line;
}

export function createLogger(config: Pick<Config, 'log' | 'nodeId' | 'mode'>, destination?: DestinationStream): Logger {
  const options = {
    level: config.log.level,
    base: { node: config.nodeId, mode: config.mode },
    // Tokens, signatures and message content must never reach the logs, whatever a caller passes.
    redact: { paths: REDACTED_PATHS, censor: '***' },
    serializers: { err: safeError, error: safeError },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return destination ? pino(options, destination) : pino(options);
}

/**
 * A gate for a warning that an outage repeats thousands of times: open at most once per
 * `ms`, counting what it held back so the next line can say how many.
 */
export class LogThrottle {
  private last = Number.NEGATIVE_INFINITY;
  private held = 0;

  constructor(private readonly ms = 5000) {}

  /** True when a line may be written now; otherwise counts it as held back. */
  due(now = Date.now()): boolean {
    if (now - this.last < this.ms) {
      this.held++;
      return false;
    }
    this.last = now;
    return true;
  }

  /** Lines held back since the last one written (and starts counting again). */
  takeHeld(): number {
    const n = this.held;
    this.held = 0;
    return n;
  }
}
