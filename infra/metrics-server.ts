import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PortInUseError, isAddressInUse } from './ports.ts';

/** What a scrape returns; null while the node is still starting (answered with 503). */
export type MetricsSource = () => { contentType: string; metrics(): Promise<string> } | null;

export interface MetricsServer {
  url: string;
  close(): Promise<void>;
}

/**
 * Prometheus' `GET /metrics` on a listener of its own (METRICS_PORT), so it is never
 * reachable through the public listener and the ingress in front of it.
 */
export async function serveMetrics(host: string, port: number, source: MetricsSource): Promise<MetricsServer> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    const registry = source();
    if (!registry) {
      res.writeHead(503, { 'content-type': 'text/plain' }).end('starting\n');
      return;
    }
    registry.metrics().then(
      (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
      () => res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n'),
    );
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(isAddressInUse(err) ? new PortInUseError(port, 'METRICS_PORT', 'metrics') : err));
    server.listen({ host, port }, () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${bound}`;
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
