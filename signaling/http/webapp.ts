import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../../config/config.ts';
import { PROTOCOL_VERSION, type AppConfig } from '../../protocol/constants.ts';

export const WEB_DIST = fileURLToPath(new URL('../../web/dist', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
};

/**
 * Serves the built web app (`npm run build:web` → web/dist) from memory: a handful of
 * small files, read once at start-up.
 */
export function webAppRoutes(app: FastifyInstance, config: Config, dist = WEB_DIST): void {
  app.get('/app-config.json', async (): Promise<AppConfig> => ({
    protocol: PROTOCOL_VERSION,
    devWallet: config.auth.devWallet,
    chainIds: config.auth.chainIds,
    mode: config.mode,
  }));
  if (!existsSync(dist)) return;
  const files = new Map<string, { body: Buffer; type: string }>();
  const walk = (dir: string, prefix: string) => {
    for (const name of readdirSync(dir)) {
      const full = join(dir, name);
      if (statSync(full).isDirectory()) walk(full, `${prefix}${name}/`);
      else files.set(`/${prefix}${name}`, { body: readFileSync(full), type: TYPES[extname(name)] ?? 'application/octet-stream' });
    }
  };
  walk(dist, '');
  const index = files.get('/index.html');
  for (const [path, file] of files) {
    app.get(path, async (_req, reply) => reply.header('Content-Type', file.type).header('Cache-Control', 'no-cache').send(file.body));
  }
  if (index) app.get('/', async (_req, reply) => reply.header('Content-Type', index.type).header('Cache-Control', 'no-cache').send(index.body));
}
