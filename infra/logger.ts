import { pino, type Logger } from 'pino';
import type { Config } from '../config/config.ts';

export type { Logger };

export function createLogger(config: Pick<Config, 'log' | 'nodeId' | 'mode'>): Logger {
  return pino({
    level: config.log.level,
    base: { node: config.nodeId, mode: config.mode },
    // Tokens and signatures must never reach the logs, whatever a caller passes.
    redact: { paths: ['token', '*.token', 'signature', '*.signature', 'authorization', '*.authorization', 'jwtSecret', '*.jwtSecret'], censor: '***' },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}
