import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Config } from '../../config/config.ts';
import { BEARER_PROTOCOL_PREFIX, PROTOCOL_VERSION, SUBPROTOCOL } from '../../protocol/common.ts';
import { BlockRtcError, CLOSE, ERRORS } from '../../protocol/errors.ts';
import type { HelloEvent } from '../../protocol/index.ts';
import type { SessionClaims, SessionService } from '../auth/session-service.ts';
import type { Logger } from '../../infra/logger.ts';
import type { Metrics } from '../metrics.ts';
import { enforceLimit } from '../ratelimit/enforce.ts';
import type { RateLimiter } from '../ratelimit/limiter.ts';
import { clientIp, limitKey, originAllowed } from '../http/origin.ts';
import { Connection } from './connection.ts';
import type { Dispatcher } from './dispatch.ts';

export const WS_PATH = '/ws';
const CONN = Symbol('blockrtc.connection');
type Tagged = WebSocket & { [CONN]?: Connection };

export interface GatewayHooks {
  opened(conn: Connection): Promise<void>;
  closed(conn: Connection): Promise<void>;
}

/**
 * Accepts WebSocket upgrades only after the origin, the per-IP connect limit, the token
 * and its server-side session, and the per-user connection cap check out — before any
 * socket state is allocated.
 */
export class Gateway {
  private readonly wss: WebSocketServer;
  private seq = 0;
  draining = false;

  constructor(
    private readonly config: Config,
    private readonly sessions: SessionService,
    private readonly limiter: RateLimiter,
    private readonly dispatcher: Dispatcher,
    private readonly hooks: GatewayHooks,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {
    this.wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload: config.ws.maxPayloadBytes,
      // Answer with the protocol version only; the bearer entry is never echoed.
      handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
    });
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // A shared listener: a closure here would share scope with the callbacks below and keep
    // the upgrade request (headers, token, read buffer) alive for the connection's lifetime.
    socket.on('error', destroyOnError);
    this.authorize(req).then(
      (claims) => {
        if (socket.destroyed) return;
        this.wss.handleUpgrade(req, socket, head, (ws) => this.open(ws as Tagged, claims, clientIp(req, this.config.http.trustProxy)));
      },
      (err: unknown) => {
        const e = err instanceof BlockRtcError ? err : new BlockRtcError('INTERNAL');
        if (!(err instanceof BlockRtcError)) this.log.error({ err }, 'upgrade failed');
        if (e.code.startsWith('AUTH_')) this.metrics.authFailures.inc({ code: e.code });
        rejectUpgrade(socket, e);
      },
    );
  }

  private async authorize(req: IncomingMessage): Promise<SessionClaims> {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== WS_PATH) throw new BlockRtcError('NOT_FOUND');
    if (this.draining) throw new BlockRtcError('DRAINING');
    if (!originAllowed(req.headers.origin, this.config.http.allowedOrigins)) throw new BlockRtcError('ORIGIN_NOT_ALLOWED');

    const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((s) => s.trim()).filter(Boolean);
    const versions = offered.filter((p) => p.startsWith('blockrtc.v'));
    if (versions.length > 0 && !versions.includes(SUBPROTOCOL)) {
      throw new BlockRtcError('BAD_REQUEST', `Unsupported protocol ${versions.join(', ')}; this server speaks ${SUBPROTOCOL}`);
    }
    const fromProtocol = offered.find((p) => p.startsWith(BEARER_PROTOCOL_PREFIX))?.slice(BEARER_PROTOCOL_PREFIX.length);
    const auth = req.headers.authorization;
    const token = fromProtocol ?? (auth?.startsWith('Bearer ') ? auth.slice(7) : undefined);
    if (!token) throw new BlockRtcError('AUTH_TOKEN_MISSING', 'Send the token as the `bearer.<token>` subprotocol or an Authorization header');

    const ip = clientIp(req, this.config.http.trustProxy);
    await enforceLimit(this.limiter, this.metrics, { name: 'conn', metric: 'connect', id: limitKey(ip), rule: this.config.limits.connect, message: 'Too many connections from this address' });
    const claims = await this.sessions.check(token);
    await this.sessions.admit(claims.address);
    return claims;
  }

  private open(ws: Tagged, claims: SessionClaims, ip: string): void {
    const conn = new Connection(`${this.config.nodeId}.${(++this.seq).toString(36)}`, claims.address, ws, claims.expiresAt, ip);
    ws[CONN] = conn;
    this.sessions.bind(conn, claims);
    ws.on('message', onMessage);
    ws.on('pong', onPong);
    ws.on('close', onClose);
    ws.on('error', onError);
    gateways.set(ws, this);
    this.metrics.connectionsTotal.inc();
    this.hooks.opened(conn).then(
      () => {
        const hello: HelloEvent = {
          protocol: PROTOCOL_VERSION,
          address: conn.address,
          node: this.config.nodeId,
          connection: conn.id,
          tokenExpiresAt: new Date(conn.tokenExpiresAt).toISOString(),
          limits: { maxPayloadBytes: this.config.ws.maxPayloadBytes, messages: this.config.limits.messages },
        };
        conn.event('session.hello', hello);
      },
      (err: unknown) => {
        this.log.error({ err, user: conn.address }, 'connection setup failed');
        conn.fail(null, { code: 'UNAVAILABLE', message: ERRORS.UNAVAILABLE.message });
        conn.close(CLOSE.INTERNAL_ERROR, 'setup failed');
      },
    );
  }

  /** Called for a frame; `this` binding avoids a closure per connection. */
  frame(conn: Connection, data: Buffer, isBinary: boolean): void {
    this.dispatcher.handle(conn, data, isBinary);
  }

  gone(conn: Connection): void {
    conn.closed = true;
    this.hooks.closed(conn).catch((err: unknown) => this.log.warn({ err, user: conn.address }, 'disconnect bookkeeping failed'));
  }
}

function destroyOnError(this: Duplex): void {
  this.destroy();
}

// Shared listeners (no closure per connection); the socket leads to its connection and gateway.
const gateways = new WeakMap<WebSocket, Gateway>();

function onMessage(this: WebSocket, data: Buffer, isBinary: boolean): void {
  const conn = (this as Tagged)[CONN];
  if (conn && !conn.closed) gateways.get(this)?.frame(conn, data, isBinary);
}
function onPong(this: WebSocket): void {
  const conn = (this as Tagged)[CONN];
  if (conn) conn.alive = true;
}
function onClose(this: WebSocket): void {
  const conn = (this as Tagged)[CONN];
  if (conn) gateways.get(this)?.gone(conn);
}
function onError(this: WebSocket): void {
  // 'close' follows; ws reports protocol violations (oversized frames) here.
}

function rejectUpgrade(socket: Duplex, err: BlockRtcError): void {
  if (socket.destroyed) return;
  const body = JSON.stringify({ error: err.toBody() });
  const reason = { 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 429: 'Too Many Requests', 503: 'Service Unavailable' }[err.status] ?? 'Error';
  socket.end(
    `HTTP/1.1 ${err.status} ${reason}\r\nContent-Type: application/json\r\nX-BlockRTC-Error: ${err.code}\r\n` +
      `${err.extra.retryAfterMs ? `Retry-After: ${Math.ceil(err.extra.retryAfterMs / 1000)}\r\n` : ''}` +
      `Connection: close\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}
