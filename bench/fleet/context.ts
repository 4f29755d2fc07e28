/**
 * What every fleet phase gets: parameters, the environment of its nodes (the bench's Redis
 * Cluster and database), and the helpers the phases share: nodes and load generators on
 * the cluster, source addresses, and machine-level readings (CPU of the cluster, kernel
 * socket memory, PostgreSQL WAL and row counters).
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { query } from '../../testkit/pg.ts';
import { cpuMs, startLoadgen, startSignalingNode, type Loadgen, type ServerProcess } from '../signaling/procs.ts';
import { cpuWatch, type CpuReport } from '../signaling/measure.ts';
import type { ClusterHandle } from './cluster.ts';
import type { FleetParameters } from './parameters.ts';

export interface FleetContext {
  P: FleetParameters;
  env: Record<string, string>;
  jwtSecret: string;
  dbUrl: string;
  cluster: ClusterHandle;
  /** Second octet of every source address of this run (fresh ports each run). */
  ipOctet: number;
}

export const sourceIp = (ctx: FleetContext, phase: number, i: number) => `127.${ctx.ipOctet}.${phase}.${i + 1}`;
export const wsUrl = (s: ServerProcess) => `${s.url.replace(/^http/, 'ws')}/ws`;

/** One after another: a dozen nodes starting at once on two cores miss their readiness deadline. */
export async function startNodes(ctx: FleetContext, label: string, count: number, extraEnv: Record<string, string> = {}): Promise<ServerProcess[]> {
  const out: ServerProcess[] = [];
  for (let i = 0; i < count; i++) out.push(await startSignalingNode(`${label}${i}-${ctx.ipOctet}`, { ...ctx.env, ...extraEnv }, ctx.P.childMaxLifeMs));
  return out;
}

export function startLoadgens(ctx: FleetContext, count: number): Promise<Loadgen[]> {
  return Promise.all(Array.from({ length: count }, (_, i) => startLoadgen(i, ctx.P.childMaxLifeMs)));
}

/** Creates sessions in the cluster and mints tokens in each load generator, off the clock. */
export async function prepare(ctx: FleetContext, lgs: Loadgen[], addresses: string[][] | null, counts: number[]): Promise<string[][]> {
  const r = await Promise.all(
    lgs.map((lg, i) =>
      lg.call({ cmd: 'prepare', count: counts[i]!, jwtSecret: ctx.jwtSecret, ttlSec: ctx.P.tokenTtlSec, redisUrl: '', redisPrefix: ctx.env.REDIS_KEY_PREFIX!, redisClusterNodes: ctx.cluster.nodes, ...(addresses ? { addresses: addresses[i]! } : {}) }),
    ),
  );
  return r.map((x) => x.addresses);
}

/** CPU per role, with the cluster's Redis servers apart from the machine's other Redis. */
export function fleetCpuWatch(ctx: FleetContext, servers: ServerProcess[], lgs: Loadgen[], extraPids: { label: string; pids: () => number[] }[] = []) {
  const inner = cpuWatch(servers, lgs);
  const t0 = performance.now();
  const c0 = ctx.cluster.pids.reduce((a, p) => a + cpuMs(p), 0);
  const e0 = extraPids.map((e) => e.pids().reduce((a, p) => a + cpuMs(p), 0));
  const load0 = loadavg()[0]!;
  return {
    stop(): CpuReport & { clusterRedisCores: number; extraCores: Record<string, number>; loadavg1: [number, number] } {
      const r = inner.stop();
      const wall = performance.now() - t0;
      const c1 = ctx.cluster.pids.reduce((a, p) => a + cpuMs(p), 0);
      const extraCores = Object.fromEntries(extraPids.map((e, i) => [e.label, Number(((e.pids().reduce((a, p) => a + cpuMs(p), 0) - e0[i]!) / wall).toFixed(3))]));
      return { ...r, clusterRedisCores: Number(((c1 - c0) / wall).toFixed(3)), extraCores, loadavg1: [load0, loadavg()[0]!] };
    },
  };
}

/** /proc/net/sockstat: TCP sockets in use and the kernel's TCP buffer memory (pages → bytes). */
export function sockstat(): { tcpInUse: number; tcpAlloc: number; tcpMemBytes: number; timeWait: number } {
  const text = readFileSync('/proc/net/sockstat', 'utf8');
  const tcp = /TCP: inuse (\d+) orphan \d+ tw (\d+) alloc (\d+) mem (\d+)/.exec(text);
  return { tcpInUse: Number(tcp?.[1] ?? 0), timeWait: Number(tcp?.[2] ?? 0), tcpAlloc: Number(tcp?.[3] ?? 0), tcpMemBytes: Number(tcp?.[4] ?? 0) * 4096 };
}

export function memAvailableBytes(): number {
  const m = /MemAvailable:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'));
  return Number(m?.[1] ?? 0) * 1024;
}

export interface PgMark {
  lsn: string;
  inserts: number;
  updates: number;
  at: number;
}

/** WAL position and row counters of the bench database (rows written = inserts + updates over every table). */
export async function pgMark(dbUrl: string): Promise<PgMark> {
  const [w] = await query<{ lsn: string }>(dbUrl, 'select pg_current_wal_lsn()::text as lsn');
  const [t] = await query<{ ins: string; upd: string }>(dbUrl, 'select coalesce(sum(n_tup_ins),0)::text as ins, coalesce(sum(n_tup_upd),0)::text as upd from pg_stat_user_tables');
  return { lsn: w!.lsn, inserts: Number(t!.ins), updates: Number(t!.upd), at: performance.now() };
}

/** WAL bytes and rows between two marks (row counters reach pg_stat with up to a second's lag). */
export async function pgDelta(dbUrl: string, a: PgMark, b: PgMark) {
  const [d] = await query<{ bytes: string }>(dbUrl, 'select pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn)::text as bytes', [b.lsn, a.lsn]);
  const sec = (b.at - a.at) / 1000;
  const walBytes = Number(d!.bytes);
  return { walBytes, walBytesPerSecond: Math.round(walBytes / sec), rowsInserted: b.inserts - a.inserts, rowsUpdated: b.updates - a.updates, rowsPerSecond: Math.round((b.inserts - a.inserts + b.updates - a.updates) / sec) };
}

/** A process and its descendants (an SFU node and its mediasoup workers). */
export function withDescendants(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    try {
      for (const k of readFileSync(`/proc/${out[i]}/task/${out[i]}/children`, 'utf8').trim().split(/\s+/).filter(Boolean)) out.push(Number(k));
    } catch {
      // gone
    }
  }
  return out;
}
