/** Numbers of the bench: percentiles, error tallies, CPU time, one clock for every process, even splits. */
import type { CpuUsage } from './ipc.ts';

export interface Summary {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  p999: number;
  max: number;
}

const round = (v: number, digits = 3): number => Number(v.toFixed(digits));

/** Nearest-rank percentiles of a sample (ms values rounded to µs). */
export function summarize(values: ArrayLike<number>): Summary {
  const n = values.length;
  if (n === 0) return { count: 0, mean: 0, p50: 0, p90: 0, p95: 0, p99: 0, p999: 0, max: 0 };
  const sorted = Float64Array.from(values).sort();
  const at = (q: number) => sorted[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))]!;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += sorted[i]!;
  return { count: n, mean: round(sum / n), p50: round(at(0.5)), p90: round(at(0.9)), p95: round(at(0.95)), p99: round(at(0.99)), p999: round(at(0.999)), max: round(sorted[n - 1]!) };
}

export function sumErrors(...all: Record<string, number>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of all) for (const [k, v] of Object.entries(e)) out[k] = (out[k] ?? 0) + v;
  return out;
}

/** Counts one error under its code. */
export function bump(errors: Record<string, number>, code: string): void {
  errors[code] = (errors[code] ?? 0) + 1;
}

/** This process's CPU time since `mark`. */
export function cpuSince(mark: NodeJS.CpuUsage): CpuUsage {
  const d = process.cpuUsage(mark);
  return { userMs: Math.round(d.user / 1000), systemMs: Math.round(d.system / 1000) };
}

/** Epoch milliseconds with sub-millisecond resolution, comparable across processes on one machine. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** `total` in `parts` near-equal whole parts (the first ones one larger). */
export function split(total: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0));
}

export { round };
