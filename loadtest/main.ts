/**
 * `blockrtc loadtest`: the orchestrator. Parses the flags, plans the workers, forks them and
 * walks them through the phases together (sign in → connect → mix → stop), prints progress
 * every second, then writes the token cache, the JSON report and the summary. Ctrl-C (or
 * SIGTERM) skips to the stop phase, which still leaves calls and closes sockets.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs, usage, UsageError, type LoadtestOptions } from './args.ts';
import { sumStatuses } from './aggregate.ts';
import type { FromWorker, SubscriberStats, ToWorker, WorkerStatus } from './ipc.ts';
import { makePlans } from './plan.ts';
import { Progress } from './progress.ts';
import { buildReport, summary, writeReport, type PhaseTimes, type Report } from './report.ts';
import { cacheKey, TokenCache } from './token-cache.ts';

const RUN_TS = fileURLToPath(new URL('../bin/run-ts.mjs', import.meta.url));
const WORKER = fileURLToPath(new URL('./worker.ts', import.meta.url));

class Worker {
  status: WorkerStatus | null = null;
  final: { status: WorkerStatus; subscribers: SubscriberStats[] } | null = null;
  private waiters: { type: FromWorker['type']; resolve: () => void }[] = [];
  readonly exited: Promise<number | null>;
  recent: WorkerStatus['recentDelivery'][] = [];

  constructor(
    readonly proc: ChildProcess,
    onTokens: (t: Extract<FromWorker, { type: 'tokens' }>['tokens']) => void,
    onFatal: (m: string) => void,
  ) {
    this.exited = new Promise((r) => proc.once('exit', (code) => r(code)));
    proc.on('message', (m: FromWorker) => {
      if (m.type === 'status') {
        this.status = m.status;
        this.recent.push(m.status.recentDelivery);
      } else if (m.type === 'tokens') onTokens(m.tokens);
      else if (m.type === 'fatal') onFatal(m.message);
      else if (m.type === 'done') {
        this.final = { status: m.status, subscribers: m.subscribers };
        this.status = m.status;
      }
      this.waiters = this.waiters.filter((w) => (w.type === m.type ? (w.resolve(), false) : true));
    });
  }

  send(m: ToWorker): void {
    if (this.proc.connected) this.proc.send(m);
  }

  /** Resolves on the next message of `type`, or when the worker exits. */
  next(type: FromWorker['type']): Promise<void> {
    return new Promise((resolve) => {
      this.waiters.push({ type, resolve });
      void this.exited.then(() => resolve());
    });
  }
}

export interface RunResult {
  report: Report;
  exitCode: number;
}

export async function runLoadtest(o: LoadtestOptions, log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<RunResult> {
  const p: PhaseTimes = { startedAt: Date.now(), signInMs: 0, connectStartedAt: 0, connectEndedAt: 0, mixStartedAt: 0, mixEndedAt: 0, endedAt: 0 };
  const rampSec = o.users / o.connectRate;
  const tokenMinValidMs = (rampSec + o.durationSec + 120) * 1000;
  const cache = new TokenCache(o.tokenCache);
  const plans = makePlans(o, cache, tokenMinValidMs);
  const fatal: string[] = [];
  let stopping = false;
  let stopRequested: () => void = () => undefined;
  const stopSignal = new Promise<'stop'>((r) => (stopRequested = () => r('stop')));
  const onSignal = () => {
    if (stopping) return;
    stopping = true;
    log('stopping: leaving calls and closing connections…');
    stopRequested();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const workers = plans.map(
    (plan) =>
      new Worker(
        fork(RUN_TS, [WORKER], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env } }),
        (tokens) => {
          const origins = new Map(plan.users.map((u) => [u.index, new URL(u.url).origin]));
          for (const [i, t] of tokens) cache.set(cacheKey(origins.get(i)!, o.seed, i), t);
        },
        (m) => {
          fatal.push(m);
          onSignal();
        },
      ),
  );
  const progress = new Progress(o.users, o.calls, o.quiet ? () => undefined : log);
  let phase = 'start';
  const ticker = setInterval(() => {
    const statuses = workers.map((w) => w.status).filter((s): s is WorkerStatus => s !== null);
    const recent = workers.flatMap((w) => w.recent.splice(0));
    progress.line(phase, statuses, recent);
  }, 1000);

  /** Sends a phase command to every worker and waits for all (or for a stop). */
  const all = async (cmd: ToWorker, reply: FromWorker['type'], deadlineMs: number): Promise<boolean> => {
    if (stopping) return false;
    const done = Promise.all(workers.map((w) => w.next(reply)));
    for (const w of workers) w.send(cmd);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), deadlineMs)));
    const how = await Promise.race([done.then(() => 'done' as const), stopSignal, late]);
    clearTimeout(timer);
    if (how === 'late') {
      log(`${cmd.type} did not finish within ${Math.round(deadlineMs / 1000)} s; stopping`);
      fatal.push(`${cmd.type} deadline passed`);
      onSignal();
    }
    return how === 'done' && !stopping;
  };

  try {
    workers.forEach((w, i) => w.send({ type: 'plan', plan: plans[i]! }));
    phase = 'sign-in';
    const t0 = Date.now();
    // Sign-ins may wait out per-IP limits (RATE_LIMITED + retryAfterMs), hence the long deadline.
    let ok = await all({ type: 'signIn' }, 'signedIn', Math.min(3600_000, Math.max(120_000, o.users * 500)));
    p.signInMs = Date.now() - t0;
    cache.save();
    if (ok) {
      phase = 'connect';
      p.connectStartedAt = Date.now() + 300;
      ok = await all({ type: 'connect', at: p.connectStartedAt }, 'connected', rampSec * 1000 * 2 + 60_000);
      p.connectEndedAt = Date.now();
    }
    if (ok) {
      phase = 'mix';
      p.mixStartedAt = Date.now() + 300;
      ok = await all({ type: 'mix', at: p.mixStartedAt, until: p.mixStartedAt + o.durationSec * 1000 }, 'mixDone', o.durationSec * 1000 + 60_000);
    }
    // Rates are over the planned mix (answers and deliveries of its last sends still count).
    p.mixEndedAt = p.mixStartedAt ? Math.min(Date.now(), p.mixStartedAt + o.durationSec * 1000) : 0;
    phase = 'stop';
    const done = Promise.all(workers.map((w) => w.next('done')));
    for (const w of workers) w.send({ type: 'stop' });
    await Promise.race([done, new Promise((r) => setTimeout(r, 30_000))]);
  } finally {
    clearInterval(ticker);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    for (const w of workers) if (w.proc.exitCode === null && w.proc.signalCode === null) w.proc.kill('SIGKILL');
    cache.save();
  }
  p.endedAt = Date.now();
  if (!p.connectStartedAt) p.connectStartedAt = p.connectEndedAt = p.endedAt;
  if (!p.mixStartedAt) p.mixStartedAt = p.mixEndedAt = p.endedAt;
  const totals = sumStatuses(workers.map((w) => w.final?.status ?? w.status).filter((s): s is WorkerStatus => s !== null));
  const subscribers = workers.flatMap((w) => w.final?.subscribers ?? []);
  for (const m of fatal) {
    const key = `worker:${m.split('\n')[0]!.slice(0, 80)}`;
    totals.errors[key] = (totals.errors[key] ?? 0) + 1;
  }
  const report = buildReport(o, totals, subscribers, p, stopping);
  if (o.report) writeReport(o.report, report);
  process.stdout.write(`${summary(report)}\n${o.report ? `report: ${o.report}\n` : ''}`);
  const incomplete = workers.some((w) => w.final === null);
  return { report, exitCode: fatal.length || incomplete ? 1 : 0 };
}

/** The `blockrtc loadtest` command: exit 0 after a complete run, 1 if a worker failed, 2 on bad flags. */
export async function loadtestCommand(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(usage());
    return 0;
  }
  let o: LoadtestOptions;
  try {
    o = parseArgs(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`blockrtc loadtest: ${err.message}\n\n${usage()}`);
      return 2;
    }
    throw err;
  }
  return (await runLoadtest(o)).exitCode;
}
