/**
 * A minimal WebSocket client for idle connections: one pre-built upgrade request, a check
 * for `101` and the `session.hello` frame, then only pings to answer and a close to do.
 * The `ws` client's handshake (an http.ClientRequest, key generation and accept check per
 * socket) cost the load generator more CPU per connection than a bare `ws` server spends
 * accepting it; on a 2-core machine that measures the load generator, not the server.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { BEARER_PROTOCOL_PREFIX, SUBPROTOCOL } from '../../protocol/common.ts';

const HEADER_END = Buffer.from('\r\n\r\n');
/** Any 16 bytes, base64; the server only echoes a hash of it, which is not checked here. */
const KEY = 'YmxvY2tydGMtYmVuY2gtMQ==';

const enum Op {
  Text = 0x1,
  Close = 0x8,
  Ping = 0x9,
  Pong = 0xa,
}

/**
 * A client frame: FIN, the opcode, the mask bit and an all-zero masking key (legal; the
 * payload then goes unchanged). Control frames only, so the length is below 126.
 */
function clientFrame(op: Op, payload: Buffer): Buffer {
  const f = Buffer.alloc(6 + payload.length);
  f[0] = 0x80 | op;
  f[1] = 0x80 | payload.length;
  payload.copy(f, 6);
  return f;
}

const CLOSE_NORMAL = (() => {
  const p = Buffer.alloc(2);
  p.writeUInt16BE(1000);
  return clientFrame(Op.Close, p);
})();

export interface RawClient {
  socket: Socket;
  /** Bytes of a frame split across reads. */
  pending: Buffer | null;
  /** We sent a close frame. */
  closing: boolean;
  /** The server closed (or the socket dropped) without us asking. */
  dropped: boolean;
  onClose: (() => void) | null;
  /** Called once when the server closed or the socket dropped without us asking (reconnects hook here). */
  onDrop: (() => void) | null;
}

const STATE = Symbol('raw');
type Tagged = Socket & { [STATE]?: RawClient };

/** Shared listeners after the handshake (no closure per idle socket). */
function onData(this: Socket, chunk: Buffer): void {
  const c = (this as Tagged)[STATE];
  if (c) frames(c, chunk, null);
}
function onClose(this: Socket): void {
  const c = (this as Tagged)[STATE];
  if (!c) return;
  if (!c.closing) c.dropped = true;
  c.onClose?.();
  if (c.dropped) c.onDrop?.();
}
function onError(): void {
  // 'close' follows.
}

/** Parses server frames (never masked); text frames go to `text` during the handshake. */
function frames(c: RawClient, chunk: Buffer, text: ((t: string) => void) | null): void {
  const buf = c.pending ? Buffer.concat([c.pending, chunk]) : chunk;
  let off = 0;
  while (buf.length - off >= 2) {
    const op = buf[off]! & 0x0f;
    let len = buf[off + 1]! & 0x7f;
    let hdr = 2;
    if (len === 126) {
      if (buf.length - off < 4) break;
      len = buf.readUInt16BE(off + 2);
      hdr = 4;
    } else if (len === 127) {
      if (buf.length - off < 10) break;
      len = Number(buf.readBigUInt64BE(off + 2));
      hdr = 10;
    }
    if (buf.length - off < hdr + len) break;
    const payload = buf.subarray(off + hdr, off + hdr + len);
    off += hdr + len;
    if (op === Op.Text) text?.(payload.toString());
    else if (op === Op.Ping) c.socket.write(clientFrame(Op.Pong, payload));
    else if (op === Op.Close) {
      if (!c.closing) {
        c.dropped = true;
        c.closing = true;
        c.socket.write(clientFrame(Op.Close, payload.subarray(0, 2)));
      }
      c.socket.end();
    }
  }
  // Copy the remainder so a large read buffer is not kept alive by a few bytes.
  c.pending = off < buf.length ? Buffer.from(buf.subarray(off)) : null;
}

export interface RawConnectOptions {
  host: string;
  port: number;
  path: string;
  localAddress: string;
  token: string;
  timeoutMs: number;
}

/** Resolves once `session.hello` arrived; rejects with a short reason (error code, HTTP status). */
export function rawConnect(o: RawConnectOptions): Promise<RawClient> {
  const request =
    `GET ${o.path} HTTP/1.1\r\nHost: ${o.host}:${o.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ${SUBPROTOCOL}, ${BEARER_PROTOCOL_PREFIX}${o.token}\r\n\r\n`;
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: o.host, port: o.port, localAddress: o.localAddress });
    const c: RawClient = { socket, pending: null, closing: false, dropped: false, onClose: null, onDrop: null };
    let head: Buffer | null = Buffer.alloc(0);
    let settled = false;
    const finish = (err: string | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.removeAllListeners('data');
      socket.removeAllListeners('error');
      socket.removeAllListeners('close');
      socket.on('error', onError);
      if (err !== null) {
        socket.destroy();
        return reject(new Error(err));
      }
      (socket as Tagged)[STATE] = c;
      socket.on('data', onData);
      socket.on('close', onClose);
      resolve(c);
    };
    const timer = setTimeout(() => finish('hello-timeout'), o.timeoutMs);
    socket.once('connect', () => socket.write(request));
    socket.on('error', (err: NodeJS.ErrnoException) => finish(err.code ?? err.message.slice(0, 60)));
    socket.on('close', () => finish('closed before hello'));
    socket.on('data', (chunk: Buffer) => {
      if (head !== null) {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf(HEADER_END);
        if (end < 0) return;
        const text = head.subarray(0, end).toString('latin1');
        const rest = head.subarray(end + 4);
        head = null;
        if (!text.startsWith('HTTP/1.1 101')) {
          const code = /\r\nx-blockrtc-error:\s*([A-Z_]+)/i.exec(text)?.[1];
          return finish(code ?? text.slice(0, 12));
        }
        chunk = rest;
      }
      frames(c, chunk, (t) => {
        if (t.startsWith('{"ev":"session.hello"')) finish(null);
      });
    });
  });
}

/** Sends a normal close and resolves when the socket is gone (or destroys it after `timeoutMs`). */
export function rawClose(c: RawClient, timeoutMs: number): Promise<'closed' | 'terminated'> {
  return new Promise((resolve) => {
    if (c.socket.destroyed) return resolve('closed');
    const t = setTimeout(() => {
      c.socket.destroy();
      resolve('terminated');
    }, timeoutMs);
    c.onClose = () => {
      clearTimeout(t);
      resolve('closed');
    };
    c.closing = true;
    c.socket.write(CLOSE_NORMAL);
  });
}
