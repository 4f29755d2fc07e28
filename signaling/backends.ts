import type { Config } from '../config/config.ts';
import type { Bus } from '../infra/bus/bus.ts';
import { MemoryBus } from '../infra/bus/memory.ts';
import { RedisBus } from '../infra/bus/redis.ts';
import type { Logger } from '../infra/logger.ts';
import { createRedisPair, redisKeys, type RedisPair } from '../infra/redis/connect.ts';
import { LocalSfuClient, NoSfuClient, RedisSfuClient, type SfuClient } from '../sfu/channel.ts';
import { createSfuRegistry } from '../sfu/registry/create.ts';
import type { SfuRegistry } from '../sfu/registry/registry.ts';
import type { SfuService } from '../sfu/service.ts';
import { MemoryNonceStore } from './auth/nonces/memory.ts';
import { RedisNonceStore } from './auth/nonces/redis.ts';
import type { NonceStore } from './auth/nonces/store.ts';
import { MemorySessionStore } from './auth/sessions/memory.ts';
import { RedisSessionStore } from './auth/sessions/redis.ts';
import type { SessionStore } from './auth/sessions/store.ts';
import { MemoryPresenceStore } from './presence/memory.ts';
import { RedisPresenceStore } from './presence/redis.ts';
import type { PresenceStore } from './presence/store.ts';
import type { RateLimiter } from './ratelimit/limiter.ts';
import { MemoryRateLimiter } from './ratelimit/memory.ts';
import { RedisRateLimiter } from './ratelimit/redis.ts';

/** The shared-state pieces, in-process or Redis; chosen once, here. */
export interface Backends {
  kind: 'memory' | 'redis';
  bus: Bus;
  presence: PresenceStore;
  nonces: NonceStore;
  /** Signed-in sessions (revocation, token generations, absolute end). */
  authSessions: SessionStore;
  limiter: RateLimiter;
  /** Where SFU nodes and call placements are kept. */
  registry: SfuRegistry;
  /** The Redis connections when Redis is used (an SFU node in the same process shares them). */
  redis: RedisPair | null;
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
      authSessions: new MemorySessionStore(),
      limiter: new MemoryRateLimiter(),
      registry: createSfuRegistry(config, null),
      redis: null,
      ping: async () => undefined,
      close: async () => undefined,
    };
  }
  const keys = redisKeys(config.redis.keyPrefix);
  const redis = createRedisPair(config.redis, log);
  const { cmd, sub } = redis;
  const bus = new RedisBus(cmd, sub, keys);
  return {
    kind: 'redis',
    bus,
    presence: new RedisPresenceStore(cmd, keys, config.nodeId, config.presence.staleMs),
    nonces: new RedisNonceStore(cmd, keys),
    authSessions: new RedisSessionStore(cmd, keys, config.redis.keyPrefix),
    limiter: new RedisRateLimiter(cmd, keys),
    registry: createSfuRegistry(config, cmd),
    redis,
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

/**
 * How this signaling node reaches the media tier: the SFU in this process (embedded, no
 * Redis), the fleet through the Redis command channel, or nothing (clear errors).
 */
export async function createMediaClient(config: Config, backends: Backends, local?: { id: string; service: SfuService }): Promise<SfuClient> {
  if (backends.redis) return RedisSfuClient.create(backends.redis.cmd, backends.redis.sub, config.redis.keyPrefix, config.nodeId, config.sfu.commandTimeoutMs);
  if (local) return new LocalSfuClient(new Map([[local.id, local.service]]));
  return new NoSfuClient();
}
