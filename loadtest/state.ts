/**
 * A worker's running tallies: counters, errors by operation and code, latency histograms,
 * and the shared clock (epoch ms with sub-ms precision: sender and receiver of a message
 * read the same clock when both are on this machine).
 */
import { performance } from 'node:perf_hooks';
import { Hist } from './hist.ts';
import { zeroCounters, type HistName, type WorkerStatus } from './ipc.ts';

export const nowMs = (): number => performance.timeOrigin + performance.now();

export const counters = zeroCounters();
export const errors: Record<string, number> = {};
export const hists: Record<HistName, Hist> = {
  signInMs: new Hist(),
  connectMs: new Hist(),
  ackMs: new Hist(),
  deliveryMs: new Hist(),
  callSetupMs: new Hist(),
  firstMediaMs: new Hist(),
};
const recentDelivery = new Hist();

export function countError(op: string, err: unknown): void {
  const code = (err as { code?: unknown })?.code;
  const key = `${op}:${typeof code === 'string' ? code : err instanceof Error ? err.message.slice(0, 60) : String(err)}`;
  errors[key] = (errors[key] ?? 0) + 1;
}

export function recordDelivery(ms: number): void {
  hists.deliveryMs.add(ms);
  recentDelivery.add(ms);
}

/** A snapshot for the orchestrator; the recent-delivery window restarts. */
export function status(): WorkerStatus {
  const s: WorkerStatus = {
    counters: { ...counters },
    errors: { ...errors },
    hists: Object.fromEntries(Object.entries(hists).map(([k, h]) => [k, h.toJSON()])) as WorkerStatus['hists'],
    recentDelivery: recentDelivery.toJSON(),
  };
  recentDelivery.reset();
  return s;
}
