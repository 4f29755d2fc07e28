/**
 * `npm run bench:fleet`: the million-user design on one machine. Real PostgreSQL, the
 * bench's own 3-master Redis Cluster, many `blockrtc signaling` processes, two `blockrtc
 * sfu` processes and load generator processes; phases one after another (phases/):
 * connections, chat, storm, media. Writes bench/results/fleet.json and prints a summary.
 *
 * Flags: --connections=250000   --scale=1 (below 1: fewer connections, shorter runs; for
 * trying it out)   --only=connections,chat,storm,media   --rates=1000,3000 (chat, msg/s)
 * --repeats=3 (chat runs; the median is the figure)   --calls=100   --out=path.json
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestDatabase } from '../../testkit/pg.ts';
import { migrate } from '../../testkit/node.ts';
import { testPrefix } from '../../testkit/redis.ts';
import { gitState, machineInfo } from '../signaling/env.ts';
import { log } from '../signaling/log.ts';
import { nodeEnvBase } from '../signaling/parameters.ts';
import { killAll, sleep } from '../signaling/procs.ts';
import { startCluster, type ClusterHandle } from './cluster.ts';
import type { FleetContext } from './context.ts';
import { FLEET_PHASES, fleetParameters, type FleetPhase } from './parameters.ts';
import { chatPhase } from './phases/chat.ts';
import { connectionsPhase } from './phases/connections.ts';
import { mediaPhase } from './phases/media.ts';
import { stormPhase } from './phases/storm.ts';
import { printSummary } from './summary.ts';

const args = new Map(
  process.argv.slice(2).map((a) => {
    const body = a.replace(/^--/, '');
    const eq = body.indexOf('=');
    return eq < 0 ? ([body, 'true'] as const) : ([body.slice(0, eq), body.slice(eq + 1)] as const);
  }),
);
const only = new Set((args.get('only')?.split(',') ?? FLEET_PHASES) as FleetPhase[]);
for (const o of only) if (!FLEET_PHASES.includes(o)) throw new Error(`--only: unknown phase ${o} (phases: ${FLEET_PHASES.join(',')})`);
const P = fleetParameters({
  connections: Number(args.get('connections') ?? 250_000),
  scale: Number(args.get('scale') ?? 1),
  repeats: Number(args.get('repeats') ?? 3),
  rates: (args.get('rates') ?? '1000,3000').split(',').map(Number),
  calls: Number(args.get('calls') ?? 100),
});
const OUT = args.get('out') ?? fileURLToPath(new URL('../results/fleet.json', import.meta.url));
const JWT_SECRET = `fleet-${randomBytes(24).toString('hex')}`;

const PHASES: [FleetPhase, (ctx: FleetContext) => Promise<object>][] = [
  ['connections', connectionsPhase],
  ['chat', chatPhase],
  ['storm', stormPhase],
  ['media', mediaPhase],
];

async function main(): Promise<number> {
  const t0 = Date.now();
  const report: Record<string, unknown> = { benchmark: 'fleet', startedAt: new Date().toISOString(), machine: await machineInfo(), code: gitState(), parameters: { ...P, phases: [...only] } };
  const db = await createTestDatabase('fleet');
  let cluster: ClusterHandle | null = null;
  let failed = false;
  let cleaned = false;
  const cleanup = async () => {
    if (cleaned) return;
    cleaned = true;
    killAll();
    await cluster?.stop().catch(() => undefined);
    await db.drop().catch((e: unknown) => console.error('dropping the database failed:', e));
  };
  const onSignal = (sig: NodeJS.Signals) => {
    console.error(`\n${sig}: stopping children, the Redis Cluster and dropping the database`);
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  setTimeout(() => {
    console.error(`bench still running after ${P.benchMaxMs / 60_000} min: stopping`);
    void cleanup().finally(() => process.exit(1));
  }, P.benchMaxMs).unref();
  try {
    cluster = await startCluster();
    (report.machine as Record<string, unknown>).redisCluster = { version: cluster.version, masters: cluster.nodes };
    log(`Redis Cluster ${cluster.nodes.join(', ')}; database ${db.name}`);
    await migrate(db.url);
    const prefix = testPrefix('fleet');
    const base = nodeEnvBase(db.url, prefix, JWT_SECRET);
    delete base.REDIS_URL;
    const env = { ...base, REDIS_CLUSTER_NODES: cluster.nodes.join(','), PRESENCE_STALE_MS: String(P.storm.staleMs) };
    report.serverEnvironment = { ...env, JWT_SECRET: '<random per run>' };
    const ctx: FleetContext = { P, env, jwtSecret: JWT_SECRET, dbUrl: db.url, cluster, ipOctet: 1 + Math.floor(Math.random() * 250) };
    for (const [name, fn] of PHASES) {
      if (!only.has(name)) continue;
      log(`phase ${name}`);
      const p0 = Date.now();
      try {
        report[name] = { ...(await fn(ctx)), phaseSeconds: Math.round((Date.now() - p0) / 1000) };
      } catch (err) {
        failed = true;
        console.error(`phase ${name} failed:`, err);
        report[name] = { error: err instanceof Error ? err.message : String(err) };
        killAll();
      }
      await sleep(1000);
    }
  } finally {
    await cleanup();
  }
  report.finishedAt = new Date().toISOString();
  report.durationSeconds = Math.round((Date.now() - t0) / 1000);
  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(OUT, `${JSON.stringify(report, null, 2)}\n`);
  printSummary(report);
  console.log(`\nwrote ${OUT} (${report.durationSeconds} s)`);
  return failed ? 1 : 0;
}

process.on('exit', killAll);
main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error('bench failed:', err);
    killAll();
    process.exit(1);
  },
);
