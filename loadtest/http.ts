/**
 * A JSON POST over http(s) from a chosen local address (fetch cannot bind one), so sign-ins
 * are spread over source addresses like the WebSocket connections.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

export function postJson<T>(url: string, body: unknown, localAddress: string, origin: string | null = null, timeoutMs = 15_000): Promise<{ status: number; body: T; errorCode: string | null }> {
  const u = new URL(url);
  const payload = Buffer.from(JSON.stringify(body));
  const request = u.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(
      u,
      {
        method: 'POST',
        localAddress,
        timeout: timeoutMs,
        headers: { 'content-type': 'application/json', 'content-length': String(payload.length), ...(origin ? { origin } : {}) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          let parsed: unknown;
          try {
            parsed = JSON.parse(text);
          } catch {
            return reject(new Error(`HTTP ${res.statusCode} (not JSON)`));
          }
          const header = res.headers['x-blockrtc-error'];
          const code = typeof header === 'string' ? header : ((parsed as { error?: { code?: string } }).error?.code ?? null);
          resolve({ status: res.statusCode ?? 0, body: parsed as T, errorCode: res.statusCode === 200 ? null : code });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err: NodeJS.ErrnoException) => reject(new Error(err.code ?? err.message)));
    req.end(payload);
  });
}
