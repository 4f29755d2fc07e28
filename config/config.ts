import { availableParallelism, hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { z } from 'zod';

/** Thrown at start-up; the message names every bad variable. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

export type Mode = 'all' | 'signaling' | 'migrate' | 'sfu' | 'turn';

export interface RateLimit {
  /** Allowed events per window. */
  limit: number;
  windowMs: number;
}

export interface Config {
  mode: Mode;
  nodeId: string;
  log: { level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent' };
  http: {
    host: string;
    port: number;
    /** /metrics is served on its own listener (never the public one); 0 picks a free port. */
    metricsPort: number;
    /** Origin the app is served from; SIWE domain and URI derive from it. */
    publicOrigin: string;
    allowedOrigins: string[];
    /**
     * Proxies in front of the node: the client is the rightmost X-Forwarded-For address
     * that is not one of them (`hops` counted from the socket peer, or inside `cidrs`).
     */
    trustProxy: { hops: number; cidrs: string[] };
    uploadMaxBytes: number;
    /** Per-user stored bytes of uploads. */
    uploadQuotaBytes: number;
    /** Uploads no message refers to are removed after this long. */
    attachmentOrphanTtlSec: number;
  };
  auth: {
    jwtSecret: string;
    /** True when the secret was generated for this process (embedded mode). */
    jwtSecretGenerated: boolean;
    tokenTtlSec: number;
    /** Absolute session lifetime from sign-in; refreshing never extends past it. */
    sessionMaxAgeSec: number;
    /** Concurrent WebSocket connections per user across all nodes. */
    maxConnectionsPerUser: number;
    nonceTtlSec: number;
    domain: string;
    uri: string;
    chainIds: number[];
    devWallet: boolean;
  };
  ws: { maxPayloadBytes: number; pingIntervalMs: number; maxBufferedBytes: number };
  redis: { url: string | null; clusterNodes: string[]; keyPrefix: string; password: string | null; tls: boolean };
  db: { url: string | null; dataDir: string; poolSize: number };
  presence: { heartbeatMs: number; staleMs: number; offlineGraceMs: number };
  limits: { auth: RateLimit; connect: RateLimit; messages: RateLimit; calls: RateLimit; framesPerSec: number; pendingWrites: number };
  sfu: {
    workers: number;
    listenIp: string;
    announcedAddress: string | null;
    portBase: number;
    maxConsumersPerWorker: number;
    /** WebRTC transports one media peer may hold (send, receive, screen share). */
    maxTransportsPerPeer: number;
    workerLogLevel: 'debug' | 'warn' | 'error' | 'none';
    commandTimeoutMs: number;
  };
  turn: {
    urls: string[];
    secret: string | null;
    ttlSec: number;
    realm: string;
    /** For the generated coturn configuration. */
    listenIp: string;
    port: number;
    externalIp: string | null;
    relayPorts: { min: number; max: number };
    userQuota: number;
    totalQuota: number;
    /** Deny relays to the TURN host's own addresses (external IP, listen IP). */
    denyOwnAddresses: boolean;
  };
  calls: {
    ringTimeoutMs: number;
    /** People (addresses) in one call, the initiator included. */
    maxParticipants: number;
    /** Distinct devices one participant may join a call's media from (each replaces the previous). */
    maxDevicesPerParticipant: number;
    /** Calls one caller may have ringing at once; more are refused. */
    maxRingingPerCaller: number;
    /** Calls ringing one callee at once; an invitation beyond it is marked busy. */
    maxRingingPerCallee: number;
  };
  groups: {
    /** Members of one group (active and invited), its creator included. */
    maxMembers: number;
  };
  /** JSON-RPC endpoints and what uses them: contract-wallet sign-in, ENS names, token gates. */
  chain: {
    /** One endpoint per accepted chain id; a chain without one has no chain features. */
    rpcUrls: Map<number, string>;
    /** Per JSON-RPC request; a request that takes longer counts as failed. */
    rpcTimeoutMs: number;
    /** Further attempts after a failed request (with backoff); a contract revert is an answer, not a failure. */
    rpcRetries: number;
    /** How long token balances and owners read for gates are reused. */
    cacheTtlSec: number;
    ens: {
      /** The chain whose ENS registry names addresses. */
      chainId: number;
      /** Registry address override (a local chain); default: the one ethers knows for the chain. */
      registry: string | null;
      /** Names are served from cache this long, then refreshed in the background. */
      ttlSec: number;
    };
    /** How long an existing member keeps gated access while the chain cannot be asked. */
    gateGraceSec: number;
    /** How often each member of a gated group is checked again (and how old a check may be). */
    gateRecheckSec: number;
  };
  drainTimeoutMs: number;
}

type Env = Record<string, string | undefined>;

function validCidr(v: string): boolean {
  const [addr, bits, extra] = v.split('/');
  if (!addr || extra !== undefined) return false;
  const family = isIP(addr);
  if (family === 0) return false;
  if (bits === undefined) return true;
  const n = Number(bits);
  return /^\d+$/.test(bits) && n >= 0 && n <= (family === 4 ? 32 : 128);
}

/** `1=https://…,8453=https://…`: one JSON-RPC endpoint per chain id. */
const rpcUrls = z
  .string()
  .transform((v, ctx) => {
    const urls = new Map<number, string>();
    for (const entry of v.split(',').map((e) => e.trim()).filter(Boolean)) {
      const m = /^(\d+)=(https?:\/\/\S+)$/.exec(entry);
      if (!m) {
        ctx.addIssue({ code: 'custom', message: 'expected "<chainId>=<http(s) URL>,…", e.g. "1=https://rpc.example"' });
        return z.NEVER;
      }
      if (urls.has(Number(m[1]))) {
        ctx.addIssue({ code: 'custom', message: `chain ${m[1]} is listed twice` });
        return z.NEVER;
      }
      urls.set(Number(m[1]), m[2]!);
    }
    return urls;
  });

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => v === 'true' || v === '1' || v === 'yes');
const list = z.string().transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean));
const rate = z
  .string()
  .regex(/^\d+\/\d+$/, 'expected "<count>/<seconds>", e.g. "30/60"')
  .transform((v): RateLimit => {
    const [count, seconds] = v.split('/').map(Number) as [number, number];
    return { limit: count, windowMs: seconds * 1000 };
  })
  .refine((r) => r.limit > 0 && r.windowMs > 0, 'count and seconds must be positive');

/**
 * Reads one variable through its schema, recording a problem that names the variable
 * instead of throwing, so that every bad variable is reported at once.
 */
function reader(env: Env, problems: string[]) {
  return function read<T>(name: string, schema: z.ZodType<T>, fallback: T): T {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const parsed = schema.safeParse(raw);
    if (parsed.success) return parsed.data;
    const why = parsed.error.issues.map((i) => i.message).join('; ');
    // Secrets are never echoed back.
    const shown = /SECRET|PASSWORD|URL/.test(name) ? '<hidden>' : JSON.stringify(raw);
    problems.push(`${name}=${shown}: ${why}`);
    return fallback;
  };
}

export function loadConfig(mode: Mode, env: Env = process.env): Config {
  const problems: string[] = [];
  const read = reader(env, problems);
  const embedded = mode === 'all';

  const host = read('HOST', z.string().min(1), '127.0.0.1');
  const port = read('PORT', int(0, 65535), 8080);
  const metricsPort = read('METRICS_PORT', int(0, 65535), 9464);
  if (metricsPort !== 0 && metricsPort === port) problems.push(`METRICS_PORT: must differ from PORT (${port}); /metrics is not served on the public listener`);
  const publicOrigin = read(
    'PUBLIC_ORIGIN',
    z.string().url().transform((u) => new URL(u).origin),
    `http://localhost:${port}`,
  );
  const originUrl = new URL(publicOrigin);
  const defaultOrigins = [publicOrigin, `http://127.0.0.1:${port}`, `http://localhost:${port}`];

  let jwtSecret = read('JWT_SECRET', z.string().min(32, 'must be at least 32 characters'), '');
  let jwtSecretGenerated = false;
  if (!jwtSecret) {
    if (embedded || mode === 'migrate' || mode === 'sfu' || mode === 'turn') {
      jwtSecret = randomBytes(32).toString('base64url');
      jwtSecretGenerated = true;
    } else if (!problems.some((p) => p.startsWith('JWT_SECRET'))) {
      problems.push('JWT_SECRET: required for a signaling node (at least 32 characters, same on every node)');
    }
  }

  const redisUrl = read('REDIS_URL', z.string().regex(/^rediss?:\/\//, 'expected redis://host:port'), '');
  const clusterNodes = read('REDIS_CLUSTER_NODES', list.pipe(z.array(z.string().regex(/^[^:]+:\d+$/, 'expected host:port list'))), []);
  const dbUrl = read('DATABASE_URL', z.string().regex(/^postgres(ql)?:\/\//, 'expected postgres://…'), '');
  if (mode === 'signaling' && !redisUrl && clusterNodes.length === 0) {
    problems.push('REDIS_URL or REDIS_CLUSTER_NODES: required for a signaling node (embedded mode is `blockrtc all`)');
  }
  if (mode === 'sfu' && !redisUrl && clusterNodes.length === 0) {
    problems.push('REDIS_URL or REDIS_CLUSTER_NODES: required for an SFU node (embedded mode is `blockrtc all`)');
  }
  if ((mode === 'signaling' || mode === 'migrate') && !dbUrl && !env.DATA_DIR) {
    problems.push('DATABASE_URL: required for this command (or set DATA_DIR to use the embedded database)');
  }

  const config: Config = {
    mode,
    nodeId: read('NODE_ID', z.string().regex(/^[A-Za-z0-9._-]{1,64}$/), `${hostname()}-${randomBytes(3).toString('hex')}`),
    log: { level: read('LOG_LEVEL', z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']), 'info') },
    http: {
      host,
      port,
      metricsPort,
      publicOrigin,
      allowedOrigins: read('ALLOWED_ORIGINS', list, defaultOrigins),
      trustProxy: {
        // TRUST_PROXY=true alone means one proxy (an ingress controller) in front.
        hops: read('TRUST_PROXY_HOPS', int(0, 10), read('TRUST_PROXY', bool, false) ? 1 : 0),
        cidrs: read('TRUST_PROXY_CIDRS', list.pipe(z.array(z.string().refine(validCidr, 'expected CIDRs such as 10.0.0.0/8,fd00::/8'))), []),
      },
      uploadMaxBytes: read('UPLOAD_MAX_BYTES', int(1024, 100 * 1024 * 1024), 10 * 1024 * 1024),
      uploadQuotaBytes: read('UPLOAD_QUOTA_BYTES', int(1024, 2 ** 50), 200 * 1024 * 1024),
      attachmentOrphanTtlSec: read('ATTACHMENT_ORPHAN_TTL_SECONDS', int(1, 365 * 86400), 86400),
    },
    auth: {
      jwtSecret,
      jwtSecretGenerated,
      tokenTtlSec: read('JWT_TTL_SECONDS', int(10, 86400), 900),
      sessionMaxAgeSec: read('SESSION_MAX_AGE_SECONDS', int(5, 365 * 86400), 7 * 86400),
      maxConnectionsPerUser: read('MAX_CONNECTIONS_PER_USER', int(1, 10_000), 10),
      nonceTtlSec: read('NONCE_TTL_SECONDS', int(10, 3600), 300),
      domain: read('AUTH_DOMAIN', z.string().min(1), originUrl.host),
      uri: read('AUTH_URI', z.string().url(), publicOrigin),
      chainIds: read('AUTH_CHAIN_IDS', list.pipe(z.array(z.string().regex(/^\d+$/, 'expected a comma-separated list of chain ids').transform(Number)).min(1)), [1]),
      devWallet: read('DEV_WALLET', bool, embedded),
    },
    ws: {
      maxPayloadBytes: read('WS_MAX_PAYLOAD_BYTES', int(1024, 16 * 1024 * 1024), 64 * 1024),
      pingIntervalMs: read('WS_PING_INTERVAL_MS', int(1000, 600_000), 25_000),
      maxBufferedBytes: read('WS_MAX_BUFFERED_BYTES', int(64 * 1024, 256 * 1024 * 1024), 4 * 1024 * 1024),
    },
    redis: {
      url: redisUrl || null,
      clusterNodes,
      keyPrefix: read('REDIS_KEY_PREFIX', z.string().regex(/^[A-Za-z0-9:._-]*$/), 'brtc:'),
      // For Redis Cluster (a single Redis takes them in REDIS_URL: rediss://:password@host).
      password: read('REDIS_PASSWORD', z.string().min(1), '') || null,
      tls: read('REDIS_TLS', bool, false),
    },
    db: {
      url: dbUrl || null,
      dataDir: read('DATA_DIR', z.string().min(1), '.data'),
      poolSize: read('DB_POOL_SIZE', int(1, 200), 10),
    },
    presence: {
      heartbeatMs: read('PRESENCE_HEARTBEAT_MS', int(100, 60_000), 2000),
      staleMs: read('PRESENCE_STALE_MS', int(300, 120_000), 5000),
      offlineGraceMs: read('PRESENCE_OFFLINE_GRACE_MS', int(0, 60_000), 0),
    },
    limits: {
      auth: read('RATE_LIMIT_AUTH', rate, { limit: 30, windowMs: 60_000 }),
      connect: read('RATE_LIMIT_CONNECT', rate, { limit: 60, windowMs: 60_000 }),
      messages: read('RATE_LIMIT_MESSAGES', rate, { limit: 100, windowMs: 10_000 }),
      calls: read('RATE_LIMIT_CALLS', rate, { limit: 10, windowMs: 60_000 }),
      framesPerSec: read('WS_MAX_FRAMES_PER_SECOND', int(1, 100_000), 50),
      pendingWrites: read('CHAT_MAX_PENDING_WRITES', int(100, 1_000_000), 20_000),
    },
    sfu: {
      workers: read('SFU_WORKERS', int(1, 256), Math.max(1, availableParallelism())),
      listenIp: read('SFU_LISTEN_IP', z.string().min(1), '127.0.0.1'),
      announcedAddress: read('SFU_ANNOUNCED_ADDRESS', z.string().min(1), '') || null,
      portBase: read('SFU_PORT_BASE', int(1024, 65000), 40000),
      maxConsumersPerWorker: read('SFU_MAX_CONSUMERS_PER_WORKER', int(1, 100_000), 500),
      maxTransportsPerPeer: read('SFU_MAX_TRANSPORTS_PER_PEER', int(2, 16), 3),
      workerLogLevel: read('SFU_WORKER_LOG_LEVEL', z.enum(['debug', 'warn', 'error', 'none']), 'warn'),
      commandTimeoutMs: read('SFU_COMMAND_TIMEOUT_MS', int(100, 60_000), 5000),
    },
    turn: {
      urls: read('TURN_URLS', list.pipe(z.array(z.string().regex(/^turns?:/, 'expected turn:host:port or turns:host:port URIs'))), []),
      secret: read('TURN_SECRET', z.string().min(16, 'must be at least 16 characters'), '') || null,
      ttlSec: read('TURN_TTL_SECONDS', int(60, 86400), 3600),
      realm: read('TURN_REALM', z.string().min(1), 'blockrtc'),
      listenIp: read('TURN_LISTEN_IP', z.string().min(1), '0.0.0.0'),
      port: read('TURN_PORT', int(1, 65535), 3478),
      externalIp: read('TURN_EXTERNAL_IP', z.string().min(1), '') || null,
      relayPorts: read(
        'TURN_RELAY_PORTS',
        z
          .string()
          .regex(/^\d+-\d+$/, 'expected "<min>-<max>"')
          .transform((v) => {
            const [min, max] = v.split('-').map(Number) as [number, number];
            return { min, max };
          })
          .refine((r) => r.min >= 1024 && r.max <= 65535 && r.min < r.max, 'expected 1024 <= min < max <= 65535'),
        { min: 49160, max: 49660 },
      ),
      userQuota: read('TURN_USER_QUOTA', int(1, 10_000), 12),
      totalQuota: read('TURN_TOTAL_QUOTA', int(1, 1_000_000), 3000),
      denyOwnAddresses: read('TURN_DENY_OWN_ADDRESSES', bool, true),
    },
    calls: {
      ringTimeoutMs: read('CALL_RING_TIMEOUT_MS', int(1000, 600_000), 30_000),
      maxParticipants: read('CALL_MAX_PARTICIPANTS', int(2, 64), 16),
      maxDevicesPerParticipant: read('CALL_MAX_DEVICES_PER_PARTICIPANT', int(1, 64), 8),
      maxRingingPerCaller: read('CALL_MAX_RINGING_PER_CALLER', int(1, 1000), 3),
      maxRingingPerCallee: read('CALL_MAX_RINGING_PER_CALLEE', int(1, 1000), 5),
    },
    groups: {
      maxMembers: read('GROUP_MAX_MEMBERS', int(2, 100_000), 256),
    },
    chain: {
      rpcUrls: read('CHAIN_RPC_URLS', rpcUrls, new Map<number, string>()),
      rpcTimeoutMs: read('CHAIN_RPC_TIMEOUT_MS', int(100, 120_000), 5000),
      rpcRetries: read('CHAIN_RPC_RETRIES', int(0, 10), 2),
      cacheTtlSec: read('CHAIN_CACHE_TTL_SECONDS', int(0, 86400), 60),
      ens: {
        chainId: read('ENS_CHAIN_ID', int(1, 2 ** 53 - 1), 1),
        registry: read('ENS_REGISTRY', z.string().regex(/^0x[0-9a-fA-F]{40}$/, 'expected a 0x-prefixed contract address'), '') || null,
        ttlSec: read('ENS_CACHE_TTL_SECONDS', int(1, 7 * 86400), 900),
      },
      gateGraceSec: read('GATE_GRACE_SECONDS', int(0, 30 * 86400), 3600),
      gateRecheckSec: read('GATE_RECHECK_SECONDS', int(1, 7 * 86400), 300),
    },
    drainTimeoutMs: read('DRAIN_TIMEOUT_MS', int(0, 24 * 3_600_000), 10_000),
  };
  if (config.sfu.portBase + config.sfu.workers > 65535) problems.push('SFU_PORT_BASE: SFU_PORT_BASE + SFU_WORKERS exceeds 65535');
  if (mode === 'turn' && !config.turn.secret) problems.push('TURN_SECRET: required to generate a coturn configuration');
  if (config.turn.urls.length > 0 && !config.turn.secret) problems.push('TURN_SECRET: required when TURN_URLS is set');
  if (config.presence.staleMs <= config.presence.heartbeatMs) {
    problems.push('PRESENCE_STALE_MS: must be greater than PRESENCE_HEARTBEAT_MS');
  }
  if (config.auth.devWallet && !embedded) {
    problems.push('DEV_WALLET: the development wallet is only available in embedded mode (`blockrtc all`)');
  }
  if (problems.length) throw new ConfigError(problems);
  return config;
}

/** A copy safe to log: secrets and credentials replaced. */
export function redactConfig(config: Config): unknown {
  const hide = (url: string | null) => (url ? url.replace(/\/\/[^@/]*@/, '//***@') : url);
  return {
    ...config,
    auth: { ...config.auth, jwtSecret: '***' },
    turn: { ...config.turn, secret: config.turn.secret ? '***' : null },
    redis: { ...config.redis, url: hide(config.redis.url), password: config.redis.password ? '***' : null },
    db: { ...config.db, url: hide(config.db.url) },
    // RPC URLs often carry an API key in the path or query: only the chain ids are logged.
    chain: { ...config.chain, rpcUrls: [...config.chain.rpcUrls.keys()] },
  };
}
