/**
 * The environment a run's figures were taken in: the machine (cores, memory, load at the
 * start, Node), the PostgreSQL and Redis versions, and the commit of the code under test.
 */
import { execFileSync } from 'node:child_process';
import { cpus, hostname, loadavg, release, totalmem } from 'node:os';
import { Redis } from 'ioredis';
import { PG_ADMIN_URL, query } from '../../testkit/pg.ts';
import { REDIS_URL } from '../../testkit/redis.ts';
import { round } from './stats.ts';

async function postgresVersion(): Promise<string> {
  try {
    const [r] = await query<{ v: string }>(PG_ADMIN_URL, "select current_setting('server_version') as v");
    return r?.v ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

async function redisVersion(): Promise<string> {
  const r = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await r.connect();
    return /redis_version:(\S+)/.exec(await r.info('server'))?.[1] ?? 'unknown';
  } catch {
    return 'unknown';
  } finally {
    r.disconnect();
  }
}

export async function machineInfo() {
  return {
    hostname: hostname(),
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    totalMemoryBytes: totalmem(),
    node: process.version,
    platform: `${process.platform} ${release()}`,
    loadavgAtStart: loadavg().map((v) => round(v, 2)),
    postgres: await postgresVersion(),
    redis: await redisVersion(),
  };
}

export function gitState(): { commit: string; dirty: boolean } | null {
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() !== '';
    return { commit, dirty };
  } catch {
    return null;
  }
}
