import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ConfigError, loadConfig, redactConfig, type Mode } from '../config/config.ts';
import { openDatabase } from '../db/client.ts';
import { createLogger } from '../infra/logger.ts';
import { serveMetrics } from '../infra/metrics-server.ts';
import { PortInUseError, isAddressInUse, takenPorts, type WantedPort } from '../infra/ports.ts';
import { startSignaling, type SignalingNode } from '../signaling/node.ts';
import { createBackends } from '../signaling/backends.ts';
import { createRedisPair } from '../infra/redis/connect.ts';
import { coturnConfig } from '../turn/coturn.ts';
import type { SfuNode } from '../sfu/node.ts';
import { createSfuRegistry } from '../sfu/registry/create.ts';
import type { Config } from '../config/config.ts';
import type { Logger } from '../infra/logger.ts';

const USAGE = `usage: blockrtc <command>

commands:
  all         everything in one process: signaling, embedded PostgreSQL (PGlite) unless
              DATABASE_URL is set, in-process bus unless REDIS_URL is set
  signaling   one signaling node (needs JWT_SECRET, DATABASE_URL, REDIS_URL or REDIS_CLUSTER_NODES)
  sfu         one media node: a mediasoup worker per core, placed through Redis (needs REDIS_URL
              or REDIS_CLUSTER_NODES)
  migrate     apply database migrations and exit
  turn-config print a coturn turnserver.conf from TURN_* variables (--test: loopback allowed,
              private ranges not denied — for tests on one machine only)
  loadtest    sign in, connect and exercise many users against a deployment (chat, receipts,
              typing, presence churn, WebRTC calls) and report; --help lists its flags

Configuration is read from environment variables; see README.md.`;

async function main(argv: string[]): Promise<number> {
  const command = argv[0];
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    console.log(USAGE);
    return command ? 0 : 2;
  }
  if (!['all', 'signaling', 'migrate', 'sfu', 'turn-config', 'loadtest'].includes(command)) {
    console.error(`blockrtc: unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
    return 2;
  }
  if (command === 'loadtest') return (await import('../loadtest/main.ts')).loadtestCommand(argv.slice(1));
  const mode = (command === 'turn-config' ? 'turn' : command) as Mode;
  let config: Config;
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
  const taken = await takenPorts(wantedPorts(mode, config));
  if (taken.length > 0) {
    const list = taken.map((t) => `${t.what} port ${t.port}${t.protocol === 'udp' ? '/udp' : ''} (set ${t.variable})`).join(', ');
    console.error(`blockrtc ${command}: already in use (another BlockRTC or another program?): ${list}`);
    return 1;
  }
  const log = createLogger(config);
  log.debug({ config: redactConfig(config) }, 'configuration');
  try {
    return await run(mode, config, log, argv);
  } catch (err) {
    const inUse = portInUse(err, config);
    if (!inUse) throw err;
    // One line naming the port and the variable to change: the usual cause is a second
    // instance on the same machine, not a bug worth a stack trace.
    console.error(`blockrtc ${command}: ${inUse.message}`);
    return 1;
  }
}

/** The ports a command listens on, each with the variable that moves it. */
function wantedPorts(mode: Mode, config: Config): WantedPort[] {
  if (mode !== 'all' && mode !== 'signaling' && mode !== 'sfu') return [];
  const { host, port, metricsPort } = config.http;
  const wanted: WantedPort[] = [
    { what: 'HTTP', variable: 'PORT', host, port, protocol: 'tcp' },
    { what: 'metrics', variable: 'METRICS_PORT', host, port: metricsPort, protocol: 'tcp' },
  ];
  if (mode === 'signaling') return wanted;
  for (let i = 0; i < config.sfu.workers; i++) {
    for (const protocol of ['udp', 'tcp'] as const) {
      wanted.push({ what: `SFU worker ${i}`, variable: 'SFU_PORT_BASE', host: config.sfu.listenIp, port: config.sfu.portBase + i, protocol });
    }
  }
  return wanted;
}

/** A listener that could not bind, as a PortInUseError naming the variable to change. */
function portInUse(err: unknown, config: Config): PortInUseError | null {
  if (err instanceof PortInUseError) return err;
  if (!isAddressInUse(err)) return null;
  const port = err.port ?? config.http.port;
  if (port === config.http.metricsPort) return new PortInUseError(port, 'METRICS_PORT', 'metrics');
  return new PortInUseError(port, 'PORT', 'HTTP');
}

async function run(mode: Mode, config: Config, log: Logger, argv: string[]): Promise<number> {
  if (mode === 'sfu') return runSfu(config, log);
  if (mode === 'turn') {
    process.stdout.write(coturnConfig(config.turn, { test: argv.includes('--test') }));
    return 0;
  }

  const database = await openDatabase(config.db);
  if (mode === 'migrate') {
    await database.migrate();
    log.info({ database: database.kind }, 'migrations applied');
    await database.close();
    return 0;
  }
  // The embedded mode owns its database, so it keeps the schema current itself.
  if (mode === 'all') await database.migrate();

  // /metrics listens on its own port, before the node, so a taken port is found first and
  // scrapes answer 503 until the node is up.
  let node: SignalingNode | null = null;
  const metricsServer = await serveMetrics(config.http.host, config.http.metricsPort, () => node?.metrics.registry ?? null);
  log.info({ url: metricsServer.url }, 'metrics listening');

  // The embedded mode runs an SFU node in this process; with Redis it also joins the fleet.
  const backends = createBackends(config, log);
  let sfuNode: SfuNode | null = null;
  // mediasoup (~20 MB) is loaded only by the roles that run media.
  if (mode === 'all') sfuNode = await (await import('../sfu/node.ts')).startSfu({ config, log, registry: backends.registry, ...(backends.redis ? { redis: backends.redis } : {}) });
  const signaling = await startSignaling({ config, database, log, backends, ...(sfuNode && !backends.redis ? { localSfu: sfuNode } : {}) });
  node = signaling;
  // Print where people reach the app: sign-in messages are bound to the public origin, and a
  // wallet warns about a domain mismatch when the page was opened under another name.
  if (mode === 'all') {
    log.info({ url: config.http.publicOrigin, listening: signaling.url, database: database.kind, bus: backends.kind }, `BlockRTC is running at ${config.http.publicOrigin}`);
  }

  onShutdown(config, log, (signal) => signaling.drain(signal === 'SIGTERM' ? 'node shutting down' : signal), async () => {
    await metricsServer.close();
    await sfuNode?.close();
    await backends.close();
    await database.close();
  });
  return -1;
}

async function runSfu(config: Config, log: Logger): Promise<number> {
  const redis = createRedisPair(config.redis, log);
  const { startSfu } = await import('../sfu/node.ts');
  const node = await startSfu({ config, log, registry: createSfuRegistry(config, redis.cmd), redis, http: true });
  onShutdown(config, log, () => node.drain(), async () => {
    redis.cmd.disconnect();
    redis.sub.disconnect();
  });
  return -1;
}

/**
 * SIGTERM/SIGINT: drain, then release what the process holds, then exit; a hard deadline
 * makes the process leave whatever hangs.
 */
function onShutdown(config: Config, log: Logger, drain: (signal: string) => Promise<void>, release: () => Promise<void>): void {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    setTimeout(() => {
      log.error('drain deadline passed; exiting');
      process.exit(1);
    }, config.drainTimeoutMs + 5000).unref();
    drain(signal)
      .then(release)
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
