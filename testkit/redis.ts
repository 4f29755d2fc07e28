import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';

export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export function testPrefix(label = 't'): string {
  return `brtc-test:${label}:${Date.now().toString(36)}${randomBytes(3).toString('hex')}:`;
}

/** Removes every key under a test prefix. */
export async function clearPrefix(prefix: string, url = REDIS_URL): Promise<void> {
  const r = new Redis(url);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await r.del(...keys);
    } while (cursor !== '0');
  } finally {
    r.disconnect();
  }
}

export interface TestCluster {
  nodes: string[];
  stop(): Promise<void>;
}

/** A throwaway 3-master Redis Cluster on spare ports (Redis 7 for sharded pub/sub). */
export async function startRedisCluster(basePort = 17000 + Math.floor(Math.random() * 2000)): Promise<TestCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'brtc-cluster-'));
  const ports = [basePort, basePort + 1, basePort + 2];
  const procs: ChildProcess[] = ports.map((port) =>
    spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--save', '', '--appendonly', 'no', '--dir', dir, '--cluster-node-timeout', '2000'],
      { stdio: 'ignore' },
    ),
  );
  const stop = async () => {
    for (const p of procs) p.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const port of ports) await waitForPing(port);
    const create = spawnSync('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], { encoding: 'utf8' });
    if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`);
    await waitForClusterOk(ports[0]!);
  } catch (err) {
    await stop();
    throw err;
  }
  return { nodes: ports.map((p) => `127.0.0.1:${p}`), stop };
}

async function waitForPing(port: number): Promise<void> {
  const until = Date.now() + 10_000;
  while (Date.now() < until) {
    const r = spawnSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' });
    if (r.stdout.trim() === 'PONG') return;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`redis on ${port} did not start`);
}

async function waitForClusterOk(port: number): Promise<void> {
  const until = Date.now() + 15_000;
  while (Date.now() < until) {
    const r = spawnSync('redis-cli', ['-p', String(port), 'cluster', 'info'], { encoding: 'utf8' });
    if (r.stdout.includes('cluster_state:ok')) return;
    await new Promise((res) => setTimeout(res, 200));
  }
  throw new Error('redis cluster did not become ok');
}
