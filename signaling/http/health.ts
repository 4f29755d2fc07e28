import type { FastifyInstance } from 'fastify';

export interface Readiness {
  draining(): boolean;
  /** Each named dependency check; a throw or a timeout means not ready. */
  checks: Record<string, () => Promise<void>>;
}

const CHECK_TIMEOUT_MS = 1500;

function withTimeout(p: Promise<void>, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    p.then(
      () => (clearTimeout(t), resolve()),
      (e: unknown) => (clearTimeout(t), reject(e instanceof Error ? e : new Error(String(e)))),
    );
  });
}

/**
 * Liveness and readiness on the public listener. `/metrics` is deliberately not here: it is
 * served on METRICS_PORT (infra/metrics-server.ts), which the ingress never reaches.
 */
export function healthRoutes(app: FastifyInstance, readiness: Readiness): void {
  // Liveness: the process serves requests. Never looks at Redis or PostgreSQL, so an
  // outage of either does not get every pod restarted.
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_req, reply) => {
    if (readiness.draining()) return reply.status(503).send({ status: 'draining' });
    const results: Record<string, string> = {};
    let ok = true;
    await Promise.all(
      Object.entries(readiness.checks).map(async ([name, check]) => {
        try {
          await withTimeout(check(), CHECK_TIMEOUT_MS);
          results[name] = 'ok';
        } catch (err) {
          ok = false;
          results[name] = err instanceof Error ? err.message : 'failed';
        }
      }),
    );
    return reply.status(ok ? 200 : 503).send({ status: ok ? 'ready' : 'unavailable', checks: results });
  });
}
