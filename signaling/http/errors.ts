import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { BlockRtcError } from '../../protocol/errors.ts';
import type { Logger } from '../../infra/logger.ts';

export function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  throw new BlockRtcError('INVALID_FIELDS', undefined, {
    details: r.error.issues.slice(0, 10).map((i) => ({ path: i.path.join('.'), message: i.message })),
  });
}

/**
 * A 4xx the framework raised (bad URL encoding, empty body, …) as the catalogue code of that
 * status: the client's mistake, so neither INTERNAL nor an error in the log.
 */
function clientError(status: number, message: string): BlockRtcError {
  const code = ({ 404: 'NOT_FOUND', 413: 'PAYLOAD_TOO_LARGE', 415: 'UNSUPPORTED_MEDIA_TYPE', 429: 'RATE_LIMITED' } as const)[status] ?? 'BAD_REQUEST';
  return new BlockRtcError(code, message);
}

/**
 * Errors Fastify answers before routing (a URL with broken percent-encoding) never reach the
 * error handler; this option of the Fastify constructor gives them the same shape.
 */
export function frameworkErrors(err: FastifyError, _req: FastifyRequest, reply: FastifyReply): void {
  const e = new BlockRtcError('BAD_REQUEST', err.message);
  void reply.status(e.status).send({ error: e.toBody() });
}

/** Every HTTP error leaves as `{ error: { code, message } }` from the one catalogue. */
export function installErrorHandler(app: FastifyInstance, log: Logger): void {
  app.setErrorHandler((err: FastifyError | BlockRtcError, _req, reply) => {
    let e: BlockRtcError;
    if (err instanceof BlockRtcError) e = err;
    else if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') e = new BlockRtcError('PAYLOAD_TOO_LARGE');
    else if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') e = new BlockRtcError('UNSUPPORTED_MEDIA_TYPE');
    else if (err.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || err instanceof SyntaxError) e = new BlockRtcError('BAD_JSON', err.message);
    else if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) e = clientError(err.statusCode, err.message);
    else {
      log.error({ err }, 'http request failed');
      e = new BlockRtcError('INTERNAL');
    }
    if (e.extra.retryAfterMs) void reply.header('Retry-After', Math.ceil(e.extra.retryAfterMs / 1000));
    void reply.status(e.status).send({ error: e.toBody() });
  });
  app.setNotFoundHandler((_req, reply) => {
    void reply.status(404).send({ error: new BlockRtcError('NOT_FOUND').toBody() });
  });
}
