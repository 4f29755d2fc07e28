import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ConfigError, loadConfig, redactConfig, type Mode } from '../config/config.ts';
import { openDatabase } from '../db/client.ts';
import { createLogger } from '../signaling/logger.ts';
import { startSignaling, type SignalingNode } from '../signaling/node.ts';

const USAGE = `usage: blockrtc <command>

commands:
  all         everything in one process: signaling, embedded PostgreSQL (PGlite) unless
              DATABASE_URL is set, in-process bus unless REDIS_URL is set
  signaling   one signaling node (needs JWT_SECRET, DATABASE_URL, REDIS_URL or REDIS_CLUSTER_NODES)
  migrate     apply database migrations and exit

Configuration is read from environment variables; see README.md.`;

async function main(argv: string[]): Promise<number> {
  const command = argv[0];
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    console.log(USAGE);
    return command ? 0 : 2;
  }
  if (!['all', 'signaling', 'migrate'].includes(command)) {
    console.error(`blockrtc: unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
    return 2;
  }
  const mode = command as Mode;
  let config;
  try {
    config = loadConfig(mode);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`blockrtc ${command}: ${err.message}`);
      return 2;
    }
    throw err;
  }
  if (mode === 'all' && config.auth.jwtSecretGenerated && !config.db.url) {
    // Keep sessions valid across restarts of the embedded mode: the secret lives beside its data.
    config.auth.jwtSecret = embeddedSecret(config.db.dataDir);
  }
  const log = createLogger(config);
  log.debug({ config: redactConfig(config) }, 'configuration');

  const database = await openDatabase(config.db);
  if (mode === 'migrate') {
    await database.migrate();
    log.info({ database: database.kind }, 'migrations applied');
    await database.close();
    return 0;
  }
  // The embedded mode owns its database, so it keeps the schema current itself.
  if (mode === 'all') await database.migrate();

  const node: SignalingNode = await startSignaling({ config, database, log });
  if (mode === 'all') {
    log.info({ url: node.url, database: database.kind, bus: node.backends.kind }, `BlockRTC is running at ${node.url}`);
  }

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    // Hard deadline: whatever hangs, the process leaves.
    setTimeout(() => {
      log.error('drain deadline passed; exiting');
      process.exit(1);
    }, config.drainTimeoutMs + 2000).unref();
    node
      .drain(signal === 'SIGTERM' ? 'node shutting down' : signal)
      .then(() => database.close())
      .then(
        () => process.exit(0),
        (err: unknown) => {
          log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  return -1;
}

function embeddedSecret(dataDir: string): string {
  const file = join(dataDir, 'jwt-secret');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  mkdirSync(dataDir, { recursive: true });
  const secret = randomBytes(32).toString('base64url');
  writeFileSync(file, secret, { mode: 0o600 });
  return secret;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err: unknown) => {
    console.error('blockrtc: fatal:', err);
    process.exit(1);
  },
);
