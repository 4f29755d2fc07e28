import type { Config } from '../config/config.ts';
import type { Bus } from '../infra/bus/bus.ts';
import { MemoryBus } from '../infra/bus/memory.ts';
import { RedisBus } from '../infra/bus/redis.ts';
import { MemoryNonceStore } from './auth/nonces/memory.ts';
import { RedisNonceStore } from './auth/nonces/redis.ts';
import type { NonceStore } from './auth/nonces/store.ts';
import type { Logger } from '../infra/logger.ts';
import { MemoryPresenceStore } from './presence/memory.ts';
import { RedisPresenceStore } from './presence/redis.ts';
import type { PresenceStore } from './presence/store.ts';
import type { RateLimiter } from './ratelimit/limiter.ts';
import { MemoryRateLimiter } from './ratelimit/memory.ts';
import { RedisRateLimiter } from './ratelimit/redis.ts';
import { createRedis, redisKeys, type RedisClient } from '../infra/redis/connect.ts';

/** The shared-state pieces, in-process or Redis; chosen once, here. */
export interface Backends {
  kind: 'memory' | 'redis';
  bus: Bus;
  presence: PresenceStore;
  nonces: NonceStore;
  limiter: RateLimiter;
  /** The command and subscriber connections when Redis is used (other components share them). */
  redis: RedisClient | null;
  sub: RedisClient | null;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export function createBackends(config: Config, log: Logger): Backends {
  const useRedis = config.redis.url !== null || config.redis.clusterNodes.length > 0;
  if (!useRedis) {
    return {
      kind: 'memory',
      bus: new MemoryBus(),
      presence: new MemoryPresenceStore(),
      nonces: new MemoryNonceStore(),
      limiter: new MemoryRateLimiter(),
      redis: null,
      sub: null,
      ping: async () => undefined,
      close: async () => undefined,
    };
  }
  const keys = redisKeys(config.redis.keyPrefix);
  const cmd = createRedis(config.redis, 'command');
  const sub = createRedis(config.redis, 'subscriber');
  // ioredis reconnects by itself; errors are logged, not thrown into the process.
  let lastLogged = 0;
  const onError = (err: unknown) => {
    if (Date.now() - lastLogged > 5000) {
      lastLogged = Date.now();
      log.warn({ err }, 'redis connection error');
    }
  };
  cmd.on('error', onError);
  sub.on('error', onError);
  const bus = new RedisBus(cmd, sub, keys);
  return {
    kind: 'redis',
    bus,
    presence: new RedisPresenceStore(cmd, keys, config.nodeId, config.presence.staleMs),
    nonces: new RedisNonceStore(cmd, keys),
    limiter: new RedisRateLimiter(cmd, keys),
    redis: cmd,
    sub,
    ping: async () => {
      // A cluster answers PING from any node; the bus connection must be up too.
      await cmd.ping();
      if (sub.status !== 'ready') throw new Error(`redis subscriber is ${sub.status}`);
    },
    close: async () => {
      await bus.close();
      cmd.disconnect();
    },
  };
}
