/**
 * `npm run bench:signaling`: idle-connection memory, connect rate and chat throughput of
 * real `blockrtc signaling` processes on real PostgreSQL and Redis, driven by separate
 * load generator processes. Phases run one after another (the machine has few cores).
 * This file reads the flags, sets up the database and the Redis prefix, runs the phases
 * (phases/) and hands their results to the report (report.ts).
 *
 * Flags: --only=idle-bare,idle,idle-multi,connect-rate,chat,chat-receipts,groups   --scale=0.1 (fewer connections,
 * shorter runs; for trying the bench out)   --out=path.json
 * --chat=fixed,max,steps (which chat runs)   --rate=5000 (offered msg/s of the fixed-rate runs)   --window=4 (in-flight sends per sender in the closed loop)
 * --repeats=3 (fixed-rate and closed-loop runs; the median is the figure)
 * --server-node-args="--cpu-prof --cpu-prof-dir=/tmp/prof" (extra node flags for the signaling
 * nodes; diagnostics only)   --server-log=path (copy the servers' output there)
 */
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { createTestDatabase } from '../../testkit/pg.ts';
import { migrate } from '../../testkit/node.ts';
import { clearPrefix, testPrefix } from '../../testkit/redis.ts';
import { gitState, machineInfo } from './env.ts';
import { log } from './log.ts';
import { ALL_PHASES, benchParameters, nodeEnvBase, type Phase } from './parameters.ts';
import { chatPhase } from './phases/chat.ts';
import { connectRate } from './phases/connect-rate.ts';
import { groupsPhase } from './phases/groups.ts';
import type { BenchContext } from './phases/context.ts';
import { idleMulti } from './phases/idle-multi.ts';
import { idleOne } from './phases/idle.ts';
import { killAll, setServerLogFile, setServerNodeArgs, sleep } from './procs.ts';
import { finishReport, newReport } from './report.ts';

// ---- flags ------------------------------------------------------------------------------

const args = new Map(
  process.argv.slice(2).map((a) => {
    const body = a.replace(/^--/, '');
    const eq = body.indexOf('=');
    return eq < 0 ? ([body, 'true'] as const) : ([body.slice(0, eq), body.slice(eq + 1)] as const);
  }),
);
const only = new Set((args.get('only')?.split(',') ?? ALL_PHASES) as Phase[]);
const scale = Number(args.get('scale') ?? 1);
const chatRuns = new Set(args.get('chat')?.split(',') ?? ['fixed', 'max', 'steps']);
if (args.has('server-log')) setServerLogFile(args.get('server-log')!);
if (args.has('server-node-args')) setServerNodeArgs(args.get('server-node-args')!.split(' ').filter(Boolean));
const OUT = args.get('out') ?? fileURLToPath(new URL('../results/signaling.json', import.meta.url));

const P = benchParameters({ scale, repeats: Number(args.get('repeats') ?? 3), window: Number(args.get('window') ?? 4), rate: args.has('rate') ? Number(args.get('rate')) : undefined });
/** Signs the load generators' tokens and is given to every node under test. */
const JWT_SECRET = `bench-${randomBytes(24).toString('hex')}`;
const ipOctet = 1 + Math.floor(Math.random() * 250);

/** Phase name (--only), report key, source-address phase number, and the phase itself. */
const PHASES: [Phase, string, (ctx: BenchContext) => Promise<object>][] = [
  ['idle-bare', 'idleBareWs', (ctx) => idleOne(ctx, 'bare-ws', 1)],
  ['idle', 'idleSignaling', (ctx) => idleOne(ctx, 'signaling', 2)],
  ['idle-multi', 'idleMulti', (ctx) => idleMulti(ctx, 3)],
  ['connect-rate', 'connectRate', (ctx) => connectRate(ctx, 4)],
  ['chat', 'chat', (ctx) => chatPhase(ctx, 5, ctx.P.chat)],
  ['chat-receipts', 'chatReceipts', (ctx) => chatPhase(ctx, 6, ctx.P.chatReceipts)],
  ['groups', 'groups', (ctx) => groupsPhase(ctx)],
];

// ---- main -------------------------------------------------------------------------------

async function main(): Promise<number> {
  const t0 = Date.now();
  const out = newReport({
    startedAt: new Date().toISOString(),
    machine: await machineInfo(),
    code: gitState(),
    parameters: { scale, phases: [...only], ...P, sourceAddresses: `127.${ipOctet}.<phase>.<loadgen+1>` },
  });
  const db = await createTestDatabase('bench');
  const prefix = testPrefix('bench');
  out.serverEnvironment = { ...nodeEnvBase(db.url, prefix, JWT_SECRET), JWT_SECRET: '<random per run>', LOG_LEVEL: 'warn' };
  let failed = false;
  let cleaned = false;
  const cleanup = async () => {
    if (cleaned) return;
    cleaned = true;
    killAll();
    await clearPrefix(prefix).catch((e: unknown) => console.error('clearing the Redis prefix failed:', e));
    await db.drop().catch((e: unknown) => console.error('dropping the database failed:', e));
  };
  const onSignal = (sig: NodeJS.Signals) => {
    console.error(`\n${sig}: stopping children, dropping the database`);
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // The whole bench is bounded too, whatever a phase does.
  setTimeout(() => {
    console.error(`bench still running after ${P.benchMaxMs / 60_000} min: stopping`);
    void cleanup().finally(() => process.exit(1));
  }, P.benchMaxMs).unref();

  try {
    await migrate(db.url);
    const ctx: BenchContext = { P, env: nodeEnvBase(db.url, prefix, JWT_SECRET), jwtSecret: JWT_SECRET, dbUrl: db.url, chatRuns, ipOctet };
    for (const [name, key, fn] of PHASES) {
      if (!only.has(name)) continue;
      log(`phase ${name}`);
      const p0 = Date.now();
      try {
        out[key] = { ...(await fn(ctx)), phaseSeconds: Math.round((Date.now() - p0) / 1000) };
      } catch (err) {
        failed = true;
        console.error(`phase ${name} failed:`, err);
        out[key] = { error: err instanceof Error ? err.message : String(err) };
        killAll();
      }
      await sleep(1000);
    }
  } finally {
    await cleanup();
  }
  finishReport(out, t0, OUT);
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
