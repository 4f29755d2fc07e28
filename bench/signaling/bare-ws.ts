/**
 * Baseline for the idle-connection memory figure: a plain `ws` server that accepts the
 * same handshake (subprotocols, no compression), sends one hello and holds the socket.
 * It speaks just enough (`/metrics`, the hello frame) for the same load generator and
 * measurement code to be used on it.
 */
import { createServer } from 'node:http';
import { getHeapSpaceStatistics } from 'node:v8';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { SUBPROTOCOL } from '../../protocol/common.ts';

const port = Number(process.env.PORT ?? 0);
const host = process.env.HOST ?? '127.0.0.1';
let open = 0;

const wss = new WebSocketServer({
  noServer: true,
  clientTracking: false,
  perMessageDeflate: false,
  handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
});

const HELLO = JSON.stringify({ ev: 'session.hello', data: {} });
// Shared listeners, like the real gateway: no closure per connection.
function onMessage(): void {}
function onError(): void {}
function onClose(): void {
  open--;
}

const server = createServer((req, res) => {
  if (req.url === '/metrics') {
    const m = process.memoryUsage();
    // The same metric names as the signaling node (prom-client's), so one scraper serves both.
    const spaces = getHeapSpaceStatistics()
      .map((sp) => `blockrtc_nodejs_heap_space_size_total_bytes{space="${sp.space_name.slice(0, sp.space_name.indexOf('_space'))}"} ${sp.space_size}\n`)
      .join('');
    res.end(`blockrtc_nodejs_heap_size_used_bytes ${m.heapUsed}\nblockrtc_ws_connections ${open}\nblockrtc_process_resident_memory_bytes ${m.rss}\n${spaces}`);
    return;
  }
  if (req.url === '/readyz' || req.url === '/healthz') return void res.end('{"status":"ready"}');
  res.statusCode = 404;
  res.end();
});
server.on('upgrade', (req, socket, head) => {
  socket.on('error', () => socket.destroy());
  wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
    open++;
    ws.on('message', onMessage);
    ws.on('error', onError);
    ws.on('close', onClose);
    ws.send(HELLO);
  });
});
server.listen(port, host, () => {
  const a = server.address() as AddressInfo;
  console.log(JSON.stringify({ msg: 'bare ws listening', url: `http://${host}:${a.port}` }));
});
process.on('SIGTERM', () => process.exit(0));
