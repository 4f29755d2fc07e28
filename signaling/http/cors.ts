import type { FastifyInstance } from 'fastify';
import { BlockRtcError } from '../../protocol/errors.ts';
import { originAllowed } from './origin.ts';

/**
 * Refuses requests from origins that are not allowed, and answers CORS for those that
 * are (preflights end here with 204).
 */
export function installCors(app: FastifyInstance, allowedOrigins: string[]): void {
  app.addHook('onRequest', async (req, reply) => {
    const origin = req.headers.origin;
    if (!originAllowed(origin, allowedOrigins)) throw new BlockRtcError('ORIGIN_NOT_ALLOWED');
    if (origin) {
      void reply
        .header('Access-Control-Allow-Origin', origin)
        .header('Vary', 'Origin')
        .header('Access-Control-Allow-Headers', 'authorization, content-type')
        .header('Access-Control-Allow-Methods', 'GET, POST, OPTIONS')
        .header('Access-Control-Max-Age', '600');
      if (req.method === 'OPTIONS') return reply.status(204).send();
    }
  });
}
