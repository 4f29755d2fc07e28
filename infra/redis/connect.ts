import { Cluster, Redis } from 'ioredis';
import type { Config } from '../../config/config.ts';
import { LogThrottle, type Logger } from '../logger.ts';

export type RedisClient = Redis | Cluster;

/**
 * One factory for single Redis and Redis Cluster. `subscriber` clients in a cluster get
 * one connection per master so sharded pub/sub reaches only the shard that owns a channel.
 */
export function createRedis(cfg: Config['redis'], role: 'command' | 'subscriber'): RedisClient {
  const client = connect(cfg, role);
  if (role === 'command') {
    if (client instanceof Cluster) client.on('+node', (node: Redis) => coalesceWrites(node));
    else coalesceWrites(client);
  }
  return client;
}

/**
 * Commands sent within one tick leave in one write: the socket is corked at the first and
 * flushed when the tick's work is done. Unlike ioredis' auto-pipelining, which keeps one
 * pipeline in flight per connection and holds new commands until its replies are in, this
 * never makes a command wait for the replies of earlier ones.
 */
export function coalesceWrites(client: Redis): void {
  const send = client.sendCommand.bind(client);
  let corked: Redis['stream'] | null = null;
  const flush = () => {
    corked?.uncork();
    corked = null;
  };
  client.sendCommand = (command, stream) => {
    if (!corked && client.status === 'ready' && client.stream?.writable) {
      corked = client.stream;
      corked.cork();
      process.nextTick(flush);
    }
    return send(command, stream);
  };
}

function connect(cfg: Config['redis'], role: 'command' | 'subscriber'): RedisClient {
  const common = {
    enableAutoPipelining: false,
    maxRetriesPerRequest: role === 'command' ? 2 : null,
    lazyConnect: false,
    // ioredis writes a (S)SUBSCRIBE issued between connect and ready at once, and its ready
    // check (INFO) then fails in subscriber mode and the subscription is lost: a subscriber
    // connection skips the check.
    enableReadyCheck: role !== 'subscriber',
  } as const;
  if (cfg.clusterNodes.length > 0) {
    return new Cluster(
      cfg.clusterNodes.map((hp) => {
        const [host, port] = hp.split(':') as [string, string];
        return { host, port: Number(port) };
      }),
      {
        enableAutoPipelining: common.enableAutoPipelining,
        shardedSubscribers: role === 'subscriber',
        redisOptions: {
          maxRetriesPerRequest: common.maxRetriesPerRequest,
          enableReadyCheck: common.enableReadyCheck,
          ...(cfg.password ? { password: cfg.password } : {}),
          ...(cfg.tls ? { tls: {} } : {}),
        },
        slotsRefreshTimeout: 2000,
      },
    );
  }
  if (!cfg.url) throw new Error('no Redis configured');
  return new Redis(cfg.url, common);
}

/** Key layout; `{…}` hash tags keep the keys one operation touches in one cluster slot. */
export function redisKeys(prefix: string) {
  return {
    userConns: (a: string) => `${prefix}{u:${a}}:c`,
    userSeen: (a: string) => `${prefix}{u:${a}}:seen`,
    userChannel: (a: string) => `${prefix}{u:${a}}:ev`,
    groupChannel: (g: string) => `${prefix}{g:${g}}:ev`,
    nodeConns: (n: string) => `${prefix}{n:${n}}:conns`,
    nodeSweepLock: (n: string) => `${prefix}{n:${n}}:sweep`,
    nodes: () => `${prefix}nodes:signaling`,
    nonce: (n: string) => `${prefix}{nonce:${n}}`,
    rate: (name: string, id: string) => `${prefix}{rl:${name}:${id}}`,
  };
}
export type RedisKeys = ReturnType<typeof redisKeys>;

/** A command connection and a subscriber connection: what every Redis-backed role needs. */
export interface RedisPair {
  cmd: RedisClient;
  sub: RedisClient;
}

/**
 * Opens the pair. ioredis reconnects by itself; its errors are logged (at most one line
 * every few seconds, an outage produces thousands), never thrown into the process.
 */
export function createRedisPair(cfg: Config['redis'], log: Logger): RedisPair {
  const cmd = createRedis(cfg, 'command');
  const sub = createRedis(cfg, 'subscriber');
  const throttle = new LogThrottle();
  const onError = (err: unknown) => {
    if (!throttle.due()) return;
    log.warn({ err: (err as Error)?.message ?? String(err) }, 'redis connection error');
  };
  cmd.on('error', onError);
  sub.on('error', onError);
  return { cmd, sub };
}
