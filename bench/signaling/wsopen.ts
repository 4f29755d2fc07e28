/**
 * Opens one full `ws` client with a bearer token and resolves once `session.hello` arrived
 * (the chat clients of the load generators; idle ones use rawclient.ts).
 */
import WebSocket from 'ws';
import { BEARER_PROTOCOL_PREFIX, SUBPROTOCOL } from '../../protocol/common.ts';

function onError(this: WebSocket): void {
  // 'close' follows; failures are counted where they matter.
}

export function openOne(url: string, token: string, localAddress: string, timeoutMs: number): Promise<{ ws: WebSocket }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, [SUBPROTOCOL, `${BEARER_PROTOCOL_PREFIX}${token}`], { perMessageDeflate: false, localAddress, handshakeTimeout: timeoutMs });
    let settled = false;
    const finish = (err: string | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ws.removeAllListeners();
      ws.on('error', onError);
      if (err === null) return resolve({ ws });
      ws.terminate();
      reject(new Error(err));
    };
    const timer = setTimeout(() => finish('hello-timeout'), timeoutMs);
    ws.on('message', (data) => {
      const text = data.toString();
      if (text.startsWith('{"ev":"session.hello"')) finish(null);
    });
    ws.on('unexpected-response', (req, res) => {
      const code = res.headers['x-blockrtc-error'];
      res.resume();
      req.destroy();
      finish(typeof code === 'string' ? code : `HTTP ${res.statusCode}`);
    });
    ws.on('error', (err: NodeJS.ErrnoException) => finish(err.code ?? err.message.slice(0, 60)));
    ws.on('close', (code) => finish(`closed ${code}`));
  });
}
