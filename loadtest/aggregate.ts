/**
 * Sums the workers' statuses: counters added, errors added, histograms merged.
 */
import { Hist } from './hist.ts';
import { zeroCounters, type Counters, type HistName, type WorkerStatus } from './ipc.ts';

export interface Totals {
  counters: Counters;
  errors: Record<string, number>;
  hists: Record<HistName, Hist>;
}

export function sumStatuses(statuses: WorkerStatus[]): Totals {
  const counters = zeroCounters();
  const errors: Record<string, number> = {};
  const hists = { signInMs: new Hist(), connectMs: new Hist(), ackMs: new Hist(), deliveryMs: new Hist(), callSetupMs: new Hist(), firstMediaMs: new Hist() } satisfies Record<HistName, Hist>;
  for (const s of statuses) {
    for (const k of Object.keys(counters) as (keyof Counters)[]) counters[k] += s.counters[k];
    for (const [k, n] of Object.entries(s.errors)) errors[k] = (errors[k] ?? 0) + n;
    for (const k of Object.keys(hists) as HistName[]) hists[k].merge(s.hists[k]);
  }
  return { counters, errors, hists };
}
