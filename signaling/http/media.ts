import type { FastifyInstance } from 'fastify';
import { checksumAddress } from '../address.ts';
import { z } from 'zod';
import type { Config } from '../../config/config.ts';
import type { AttachmentStore } from '../../db/attachments.ts';
import { address } from '../../protocol/common.ts';
import { BlockRtcError } from '../../protocol/errors.ts';
import type { UploadResult } from '../../protocol/index.ts';
import type { TokenService } from '../auth/tokens.ts';
import type { Metrics } from '../metrics.ts';
import { enforceLimit } from '../ratelimit/enforce.ts';
import type { RateLimiter } from '../ratelimit/limiter.ts';
import { authenticate } from './auth.ts';
import { parseBody } from './errors.ts';

const uploadQuery = z.object({ to: address });
const idParam = z.object({ id: z.string().uuid() });
const MEDIA_TYPE = /^(audio|video)\/[a-z0-9.+-]+$/;

/** Voice and video notes: raw bodies stored in PostgreSQL, readable by the two parties only. */
export function mediaRoutes(
  app: FastifyInstance,
  deps: { config: Config; tokens: TokenService; attachments: AttachmentStore; limiter: RateLimiter; metrics: Metrics },
): void {
  const { config, tokens, attachments, limiter, metrics } = deps;

  app.addContentTypeParser(/^(audio|video)\//, { parseAs: 'buffer', bodyLimit: config.http.uploadMaxBytes }, (_req, body, done) => done(null, body));

  app.post('/media', { bodyLimit: config.http.uploadMaxBytes }, async (req, reply): Promise<UploadResult> => {
    const owner = authenticate(req, tokens);
    const { to } = parseBody(uploadQuery, req.query);
    const peer = checksumAddress(to);
    if (peer === owner) throw new BlockRtcError('SELF_MESSAGE');
    const mime = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (!MEDIA_TYPE.test(mime)) throw new BlockRtcError('UNSUPPORTED_MEDIA_TYPE');
    const body = req.body;
    if (!Buffer.isBuffer(body) || body.length === 0) throw new BlockRtcError('BAD_REQUEST', 'The upload is empty');
    await enforceLimit(limiter, metrics, { name: 'upload', metric: 'upload', id: owner, rule: config.limits.messages });
    const meta = await attachments.put(owner, peer, mime, body);
    void reply.status(201);
    return { id: meta.id, mime: meta.mime, size: meta.size };
  });

  app.get('/media/:id', async (req, reply) => {
    const user = authenticate(req, tokens);
    const { id } = parseBody(idParam, req.params);
    const att = await attachments.get(id);
    // Someone who is not a party learns nothing, not even that it exists.
    if (!att || (att.owner !== user && att.peer !== user)) throw new BlockRtcError('NOT_FOUND');
    void reply.header('Content-Type', att.mime).header('Cache-Control', 'private, max-age=31536000, immutable');
    return reply.send(att.data);
  });
}
