import type { Config } from '../../config/config.ts';
import type { RedisClient } from '../../infra/redis/connect.ts';
import { MemorySfuRegistry } from './memory.ts';
import { RedisSfuRegistry } from './redis.ts';
import type { SfuRegistry } from './registry.ts';

/** The fleet's registry in Redis, or this process's only SFU node when there is no Redis. */
export function createSfuRegistry(config: Config, redis: RedisClient | null): SfuRegistry {
  return redis
    ? new RedisSfuRegistry(redis, config.redis.keyPrefix, config.presence.staleMs, config.sfu.maxConsumersPerWorker)
    : new MemorySfuRegistry(config.presence.staleMs, config.sfu.maxConsumersPerWorker);
}
