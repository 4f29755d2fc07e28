/**
 * The live progress line, once a second on stderr: phase, users connected, messages
 * delivered per second over the last second, that second's delivery p99, calls up, errors.
 */
import { Hist } from './hist.ts';
import type { WorkerStatus } from './ipc.ts';
import { sumStatuses } from './aggregate.ts';

export class Progress {
  private lastDelivered = 0;
  private lastAt = Date.now();
  private readonly startedAt = Date.now();

  constructor(
    private readonly users: number,
    private readonly calls: number,
    private readonly out: (line: string) => void,
  ) {}

  line(phase: string, statuses: WorkerStatus[], recent: WorkerStatus['recentDelivery'][]): string {
    const t = sumStatuses(statuses);
    const c = t.counters;
    const now = Date.now();
    const rate = ((c.chatDelivered - this.lastDelivered) * 1000) / Math.max(1, now - this.lastAt);
    this.lastDelivered = c.chatDelivered;
    this.lastAt = now;
    const h = new Hist();
    for (const r of recent) h.merge(r);
    const p99 = h.quantile(0.99);
    const errors = Object.values(t.errors).reduce((a, b) => a + b, 0);
    const secs = Math.round((now - this.startedAt) / 1000);
    const line =
      `[${String(secs).padStart(4)}s] ${phase.padEnd(8)} ` +
      (phase === 'sign-in' ? `signed in ${c.signInFresh + c.signInCached}/${this.users}` : `connected ${c.online}/${this.users}`) +
      `  msgs/s ${rate.toFixed(1)}  delivery p99 ${p99 === null ? '-' : `${p99.toFixed(1)} ms`}` +
      `  calls up ${c.callsUp}/${this.calls}  errors ${errors}`;
    this.out(line);
    return line;
  }
}
