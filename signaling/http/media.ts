import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { checksumAddress } from '../address.ts';
import { z } from 'zod';
import type { Config } from '../../config/config.ts';
import type { AttachmentStore } from '../../db/attachments.ts';
import { address } from '../../protocol/common.ts';
import { BlockRtcError } from '../../protocol/errors.ts';
import type { UploadResult } from '../../protocol/index.ts';
import type { SessionService } from '../auth/session-service.ts';
import type { Metrics } from '../metrics.ts';
import { enforceLimit } from '../ratelimit/enforce.ts';
import type { RateLimiter } from '../ratelimit/limiter.ts';
import { authenticate } from './auth.ts';
import { parseBody } from './errors.ts';

/** `?to=<address>` for a 1:1 note, `?group=<id>` for a group's (exactly one of them). */
const uploadQuery = z
  .object({ to: address.optional(), group: z.string().uuid().optional() })
  .refine((q) => (q.to === undefined) !== (q.group === undefined), { message: 'give either to or group', path: ['to'] });

/** What the media routes ask of groups: who may upload to one, and who may fetch its notes. */
export interface GroupMediaAccess {
  isActiveMember(group: string, address: string): Promise<boolean>;
  /** The attachment is in a message of the group that `address` could see as a member. */
  canSee(attachmentId: string, group: string, address: string): Promise<boolean>;
}
const idParam = z.object({ id: z.string().uuid() });
const MEDIA_TYPE = /^(audio|video)\/[a-z0-9.+-]+$/;

/** What the upload's onRequest hook established, for the handler (keyed on the request). */
const uploads = new WeakMap<FastifyRequest, { owner: string; peer: string; mime: string }>();

/**
 * Voice and video notes: raw bodies stored in PostgreSQL, readable by the two parties
 * only. An upload is authenticated, rate-limited and checked against the quota before a
 * byte of its body is read; a download checks the party before touching the blob and
 * streams it in pieces.
 */
export function mediaRoutes(
  app: FastifyInstance,
  deps: { config: Config; sessions: SessionService; attachments: AttachmentStore; limiter: RateLimiter; metrics: Metrics; groups?: GroupMediaAccess },
): void {
  const { config, sessions, attachments, limiter, metrics, groups } = deps;
  const quota = config.http.uploadQuotaBytes;

  app.addContentTypeParser(/^(audio|video)\//, { parseAs: 'buffer', bodyLimit: config.http.uploadMaxBytes }, (_req, body, done) => done(null, body));

  app.post(
    '/media',
    {
      bodyLimit: config.http.uploadMaxBytes,
      // Runs before the body is parsed: a request without a valid session, over its rate
      // or its quota never has its body read.
      onRequest: async (req) => {
        const { address: owner } = await authenticate(req, sessions);
        const { to, group } = parseBody(uploadQuery, req.query);
        let peer: string;
        if (group !== undefined) {
          // A group's note is readable by its members: the peer is the group's conversation key.
          if (!groups || !(await groups.isActiveMember(group.toLowerCase(), owner))) throw new BlockRtcError('NOT_GROUP_MEMBER');
          peer = `g:${group.toLowerCase()}`;
        } else {
          peer = checksumAddress(to!);
          if (peer === owner) throw new BlockRtcError('SELF_MESSAGE');
        }
        const mime = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
        if (!MEDIA_TYPE.test(mime)) throw new BlockRtcError('UNSUPPORTED_MEDIA_TYPE');
        const declared = Number(req.headers['content-length'] ?? 0);
        if (declared > config.http.uploadMaxBytes) throw new BlockRtcError('PAYLOAD_TOO_LARGE');
        await enforceLimit(limiter, metrics, { name: 'upload', metric: 'upload', id: owner, rule: config.limits.messages });
        if ((await attachments.usage(owner)) + declared > quota) throw quotaError(quota);
        uploads.set(req, { owner, peer, mime });
      },
    },
    async (req, reply): Promise<UploadResult> => {
      const up = uploads.get(req);
      if (!up) throw new BlockRtcError('AUTH_TOKEN_MISSING');
      const body = req.body;
      if (!Buffer.isBuffer(body) || body.length === 0) throw new BlockRtcError('BAD_REQUEST', 'The upload is empty');
      // Again with the real size (a chunked body declares none).
      if ((await attachments.usage(up.owner)) + body.length > quota) throw quotaError(quota);
      const meta = await attachments.put(up.owner, up.peer, up.mime, body);
      void reply.status(201);
      return { id: meta.id, mime: meta.mime, size: meta.size };
    },
  );

  app.get('/media/:id', async (req, reply) => {
    const { address: user } = await authenticate(req, sessions);
    const { id } = parseBody(idParam, req.params);
    const att = await attachments.meta(id);
    // Someone who is not a party learns nothing, not even that it exists.
    if (!att || (att.owner !== user && att.peer !== user && !(att.peer.startsWith('g:') && groups && (await groups.canSee(att.id, att.peer.slice(2), user))))) {
      throw new BlockRtcError('NOT_FOUND');
    }
    void reply
      .header('Content-Type', att.mime)
      .header('Content-Length', att.size)
      .header('X-Content-Type-Options', 'nosniff')
      .header('Cache-Control', 'private, max-age=31536000, immutable');
    return reply.send(Readable.from(attachments.chunks(id, att.size)));
  });
}

function quotaError(quota: number): BlockRtcError {
  return new BlockRtcError('UPLOAD_QUOTA_EXCEEDED', `The upload would exceed your storage quota of ${quota} bytes`);
}
