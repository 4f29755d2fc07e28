/**
 * The bench's own 3-master Redis Cluster (testkit) and what its masters say: memory, command
 * counts and ops/s (INFO), and their pids for CPU time.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { startRedisCluster, type TestCluster } from '../../testkit/redis.ts';

export interface MasterInfo {
  node: string;
  usedMemoryBytes: number;
  totalCommands: number;
  opsPerSec: number;
  keys: number;
}

export interface ClusterHandle extends TestCluster {
  pids: number[];
  version: string;
  info(): Promise<MasterInfo[]>;
}

function field(text: string, name: string): number {
  const m = new RegExp(`^${name}:(\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

/** Redis servers listening on the cluster's ports (found by their command line). */
function pidsOf(ports: string[]): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      // redis-server rewrites its title to "redis-server 127.0.0.1:<port> [cluster]".
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (cmd.includes('redis-server') && ports.some((p) => new RegExp(`(:|--port )${p}\\b`).test(cmd))) out.push(Number(d));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

export async function startCluster(): Promise<ClusterHandle> {
  const c = await startRedisCluster();
  const ports = c.nodes.map((n) => n.split(':')[1]!);
  const version = /v=(\S+)/.exec(spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).stdout)?.[1] ?? 'unknown';
  const clients = c.nodes.map((n) => new Redis(Number(n.split(':')[1]), '127.0.0.1', { maxRetriesPerRequest: 1, lazyConnect: true }));
  return {
    ...c,
    pids: pidsOf(ports),
    version,
    async info() {
      return Promise.all(
        clients.map(async (r, i) => {
          if (r.status === 'wait') await r.connect();
          const text = await r.info();
          return { node: c.nodes[i]!, usedMemoryBytes: field(text, 'used_memory'), totalCommands: field(text, 'total_commands_processed'), opsPerSec: field(text, 'instantaneous_ops_per_sec'), keys: Number(/keys=(\d+)/.exec(text)?.[1] ?? 0) };
        }),
      );
    },
    async stop() {
      for (const r of clients) r.disconnect();
      await c.stop();
    },
  };
}

/** Sums of two INFO readings: memory and commands between them. */
export function clusterDelta(before: MasterInfo[], after: MasterInfo[]) {
  const sum = (xs: MasterInfo[], f: (m: MasterInfo) => number) => xs.reduce((a, m) => a + f(m), 0);
  return {
    usedMemoryBeforeBytes: sum(before, (m) => m.usedMemoryBytes),
    usedMemoryAfterBytes: sum(after, (m) => m.usedMemoryBytes),
    memoryDeltaBytes: sum(after, (m) => m.usedMemoryBytes) - sum(before, (m) => m.usedMemoryBytes),
    commands: sum(after, (m) => m.totalCommands) - sum(before, (m) => m.totalCommands),
    commandsPerMaster: after.map((m, i) => m.totalCommands - before[i]!.totalCommands),
  };
}
