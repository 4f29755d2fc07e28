/**
 * Phase `chat`: chat throughput and delivery latency through one signaling node, every
 * message persisted in PostgreSQL. Fixed-rate (open loop) and closed-loop runs, repeated
 * (the median is the figure), then open-loop steps below and at the goal rates.
 */
import { randomBytes } from 'node:crypto';
import { getAddress } from 'ethers';
import { query } from '../../../testkit/pg.ts';
import type { ChatCollectResult, ChatPair, ChatSendResult } from '../ipc.ts';
import { log } from '../log.ts';
import { cpuPerOp, cpuWatch, scrape } from '../measure.ts';
import { sleep, startSignalingNode } from '../procs.ts';
import { nowMs, round, split, sumErrors, summarize } from '../stats.ts';
import { closeAll, connectAll, prepareUsers, startLoadgens } from './connections.ts';
import { wsUrl, type BenchContext } from './context.ts';
import type { BenchParameters } from '../parameters.ts';

export type ChatParameters = BenchParameters['chat'];

interface ChatRunSpec {
  run: string;
  mode: 'open' | 'closed';
  rate: number;
  window: number;
  durationMs: number;
  warmupMs: number;
}

export async function chatPhase(ctx: BenchContext, phase: number, c: ChatParameters) {
  const server = await startSignalingNode(`chat-${ctx.ipOctet}-${phase}`, ctx.env, ctx.P.childMaxLifeMs);
  const lgs = await startLoadgens(ctx, c.loadgens);
  try {
    const addr = () => getAddress(`0x${randomBytes(20).toString('hex')}`);
    const pairs: ChatPair[] = Array.from({ length: c.pairs }, () => ({ from: addr(), to: addr() }));
    // Pair i sends from load generator i%2 to a recipient on the other one, so every
    // latency sample crosses processes (same machine clock).
    const senderLg = (i: number) => i % lgs.length;
    const receiverLg = (i: number) => (i + 1) % lgs.length;
    const addresses = lgs.map((_, k) => [...pairs.filter((_, i) => senderLg(i) === k).map((p) => p.from), ...pairs.filter((_, i) => receiverLg(i) === k).map((p) => p.to)]);
    await prepareUsers(
      ctx,
      lgs,
      addresses.map((a) => a.length),
      addresses,
    );
    if (c.receipts) {
      // Partners in a conversation both accepted it (as after a first reply): receipts are
      // relayed to the sender, not held back as for a message request.
      await query(
        ctx.dbUrl,
        `insert into contacts (owner, peer, shares_presence) select * from unnest($1::text[], $2::text[], $3::bool[]) on conflict (owner, peer) do update set shares_presence = true`,
        [[...pairs.map((p) => p.from), ...pairs.map((p) => p.to)], [...pairs.map((p) => p.to), ...pairs.map((p) => p.from)], pairs.flatMap(() => [true, true])],
      );
    }
    const connect = await connectAll(ctx, lgs, (k) => [{ url: wsUrl(server), count: addresses[k]!.length }], phase, 100, 'ws');
    if (connect.failed > 0) throw new Error(`chat users failed to connect: ${JSON.stringify(connect.errors)}`);
    await sleep(1000);

    const runOne = async (asked: ChatRunSpec) => {
      // Short (scaled-down) runs keep a measured window after the warm-up.
      const spec = { ...asked, warmupMs: Math.min(asked.warmupMs, Math.floor(asked.durationMs / 3)) };
      const startAt = nowMs() + 500;
      const m0 = await scrape(server);
      const cpu = cpuWatch([server], lgs);
      const rates = split(spec.rate, lgs.length);
      const sends: ChatSendResult[] = await Promise.all(
        lgs.map((lg, k) =>
          lg.call({
            cmd: 'chat',
            run: spec.run,
            mode: spec.mode,
            pairs: pairs.filter((_, i) => senderLg(i) === k),
            rate: rates[k]!,
            window: spec.window,
            durationMs: spec.durationMs,
            warmupMs: spec.warmupMs,
            textBytes: c.textBytes,
            startAt,
            latencyFrom: c.latencyFrom,
            receipts: c.receipts,
          }),
        ),
      );
      const acked = sends.reduce((a, s) => a + s.acked, 0);
      // Deliveries trail the acks; wait while they keep arriving (bounded) until every
      // acked message is there.
      const hardUntil = Date.now() + 60_000;
      let delivered = -1;
      let progressAt = Date.now();
      while (Date.now() < hardUntil && Date.now() - progressAt < 10_000) {
        const d = (await Promise.all(lgs.map((lg) => lg.call({ cmd: 'count', run: spec.run })))).reduce((a, r) => a + r.received, 0);
        if (d > delivered) progressAt = Date.now();
        delivered = d;
        if (delivered >= acked) break;
        await sleep(100);
      }
      const cpuReport = cpu.stop();
      const m1 = await scrape(server);
      const rx: ChatCollectResult[] = await Promise.all(lgs.map((lg) => lg.call({ cmd: 'collect', run: spec.run })));
      const [row] = await query<{ n: number }>(ctx.dbUrl, `select count(*)::int as n from messages where client_id like $1`, [`${spec.run}-%`]);
      const persisted = row?.n ?? -1;
      const sent = sends.reduce((a, s) => a + s.sent, 0);
      const received = rx.reduce((a, r) => a + r.received, 0);
      const measuredSec = (spec.durationMs - spec.warmupMs) / 1000;
      const receivedInWindow = rx.reduce((a, r) => a + r.receivedInWindow, 0);
      const receipts = rx.reduce(
        (a, r) => ({ delivered: a.delivered + r.receipts.delivered, read: a.read + r.receipts.read, ok: a.ok + r.receipts.ok, failed: a.failed + r.receipts.failed, errors: sumErrors(a.errors, r.receipts.errors), eventsToSenders: a.eventsToSenders + r.receipts.eventsToSenders }),
        { delivered: 0, read: 0, ok: 0, failed: 0, errors: {} as Record<string, number>, eventsToSenders: 0 },
      );
      const ackedInWindow = sends.reduce((a, s) => a + s.ackedInWindow, 0);
      const batchCount = (m1.values.get('blockrtc_chat_commit_batch_size_count') ?? 0) - (m0.values.get('blockrtc_chat_commit_batch_size_count') ?? 0);
      const batchSum = (m1.values.get('blockrtc_chat_commit_batch_size_sum') ?? 0) - (m0.values.get('blockrtc_chat_commit_batch_size_sum') ?? 0);
      const commitCount = (m1.values.get('blockrtc_chat_commit_seconds_count') ?? 0) - (m0.values.get('blockrtc_chat_commit_seconds_count') ?? 0);
      const commitSum = (m1.values.get('blockrtc_chat_commit_seconds_sum') ?? 0) - (m0.values.get('blockrtc_chat_commit_seconds_sum') ?? 0);
      const result = {
        ...spec,
        offeredPerSecond: spec.mode === 'open' ? spec.rate : null,
        sent,
        acked,
        failed: sends.reduce((a, s) => a + s.failed, 0),
        unanswered: sends.reduce((a, s) => a + s.unanswered, 0),
        errors: sumErrors(...sends.map((s) => s.errors)),
        delivered: received,
        persisted,
        persistedEqualsAcked: persisted === acked,
        deliveredEqualsAcked: received === acked,
        // Arrivals inside the measured window (warm-up end → run end): what the node sustained,
        // not what it was offered (an overloaded node delivers its backlog after the window).
        ackedPerSecond: Math.round(ackedInWindow / measuredSec),
        deliveredPerSecond: Math.round(receivedInWindow / measuredSec),
        latencyFrom: c.latencyFrom,
        deliveryLatencyMs: summarize(rx.flatMap((r) => r.latencies)),
        receipts: c.receipts ? receipts : null,
        ackLatencyMs: summarize(sends.flatMap((s) => s.ackLatencies)),
        pacerLagMs: spec.mode === 'open' ? summarize(sends.flatMap((s) => s.pacerLag)) : null,
        avgCommitBatch: batchCount > 0 ? round(batchSum / batchCount, 1) : null,
        avgCommitMs: commitCount > 0 ? round((commitSum / commitCount) * 1000, 2) : null,
        serverEventLoopLagP99Ms: round((m1.values.get('blockrtc_nodejs_eventloop_lag_p99_seconds') ?? NaN) * 1000, 1),
        cpu: cpuReport,
        cpuPerMessage: cpuPerOp(cpuReport, received),
      };
      log(
        `  ${spec.run}: ${spec.mode === 'open' ? `offered ${spec.rate} msg/s, ` : `window ${spec.window}/sender, `}${result.deliveredPerSecond} msg/s delivered, p50 ${result.deliveryLatencyMs.p50} / p99 ${result.deliveryLatencyMs.p99} / max ${result.deliveryLatencyMs.max} ms; ` +
          `acked ${acked}, delivered ${received}, persisted ${persisted}${result.failed ? `, failed ${result.failed} ${JSON.stringify(result.errors)}` : ''}`,
      );
      await sleep(2000);
      return result;
    };

    const repeat = async <T,>(n: number, one: (i: number) => Promise<T>): Promise<T[]> => {
      const out: T[] = [];
      for (let i = 1; i <= n; i++) out.push(await one(i));
      return out;
    };
    // The median run; of an even number, the worse of the middle two.
    const median = <T,>(runs: T[], worse: (r: T) => number): T | null => [...runs].sort((x, y) => worse(x) - worse(y))[Math.floor(runs.length / 2)] ?? null;
    const fixedRuns = ctx.chatRuns.has('fixed')
      ? await repeat(c.repeats, (i) => runOne({ run: `fixed${i}`, mode: 'open', rate: c.fixed.rate, window: 0, durationMs: c.fixed.durationMs, warmupMs: c.fixed.warmupMs }))
      : [];
    const maxRuns = ctx.chatRuns.has('max')
      ? await repeat(c.repeats, (i) => runOne({ run: `closedmax${i}`, mode: 'closed', rate: 0, window: c.max.window, durationMs: c.max.durationMs, warmupMs: c.max.warmupMs }))
      : [];
    const fixed = median(fixedRuns, (r) => r.deliveryLatencyMs.p99);
    const max = median(maxRuns, (r) => -r.deliveredPerSecond);
    const capacity = max?.deliveredPerSecond ?? Infinity;
    const rates = [...(max ? c.stepFractionsOfMax.map((f) => Math.round((f * capacity) / 100) * 100) : []), ...c.steps].filter((r, i, all) => r > 0 && all.indexOf(r) === i);
    const steps = [];
    const skippedSteps: { rate: number; reason: string }[] = [];
    for (const rate of ctx.chatRuns.has('steps') ? rates : []) {
      if (rate > 1.1 * capacity) {
        skippedSteps.push({ rate, reason: `above the closed-loop maximum (${capacity} msg/s): it would only build a backlog` });
        continue;
      }
      steps.push(await runOne({ run: `open${rate}`, mode: 'open', rate, window: 0, durationMs: c.stepDurationMs, warmupMs: 2000 }));
    }
    const closed = await closeAll(lgs);
    return { pairs: c.pairs, users: c.pairs * 2, loadgens: lgs.length, textBytes: c.textBytes, latencyFrom: c.latencyFrom, receipts: c.receipts, connect, fixed, max, fixedRuns, maxRuns, steps, skippedSteps, close: closed };
  } finally {
    await Promise.all(lgs.map((l) => l.stop()));
    await server.stop();
  }
}
