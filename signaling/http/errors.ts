import type { FastifyError, FastifyInstance } from 'fastify';
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

/** Every HTTP error leaves as `{ error: { code, message } }` from the one catalogue. */
export function installErrorHandler(app: FastifyInstance, log: Logger): void {
  app.setErrorHandler((err: FastifyError | BlockRtcError, _req, reply) => {
    let e: BlockRtcError;
    if (err instanceof BlockRtcError) e = err;
    else if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') e = new BlockRtcError('PAYLOAD_TOO_LARGE');
    else if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') e = new BlockRtcError('UNSUPPORTED_MEDIA_TYPE');
    else if (err.code === 'FST_ERR_CTP_INVALID_CONTENT_LENGTH' || err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') e = new BlockRtcError('BAD_REQUEST', err.message);
    else if (err.statusCode === 400) e = new BlockRtcError('BAD_JSON', err.message);
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
