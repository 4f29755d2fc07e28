/**
 * A mergeable latency histogram: log buckets 1 % apart (from 1 µs), exact count, sum, min
 * and max. Workers send theirs as plain JSON and the orchestrator merges them, so
 * percentiles cover every sample without shipping the samples.
 */
const GROWTH = Math.log(1.01);
const FLOOR_MS = 0.001;

export interface HistJson {
  count: number;
  sum: number;
  min: number;
  max: number;
  buckets: [number, number][];
}

export interface Percentiles {
  count: number;
  p50: number | null;
  p90: number | null;
  p99: number | null;
  max: number | null;
  mean: number | null;
}

export class Hist {
  private readonly b = new Map<number, number>();
  count = 0;
  sum = 0;
  min = Infinity;
  max = -Infinity;

  add(ms: number): void {
    const v = Math.max(ms, 0);
    const i = v <= FLOOR_MS ? 0 : Math.ceil(Math.log(v / FLOOR_MS) / GROWTH);
    this.b.set(i, (this.b.get(i) ?? 0) + 1);
    this.count++;
    this.sum += v;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
  }

  merge(h: HistJson): void {
    for (const [i, n] of h.buckets) this.b.set(i, (this.b.get(i) ?? 0) + n);
    this.count += h.count;
    this.sum += h.sum;
    if (h.count > 0) {
      this.min = Math.min(this.min, h.min);
      this.max = Math.max(this.max, h.max);
    }
  }

  /** The upper edge of the bucket holding the q-quantile (≤ 1 % above the true value), capped at max. */
  quantile(q: number): number | null {
    if (this.count === 0) return null;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (const i of [...this.b.keys()].sort((x, y) => x - y)) {
      seen += this.b.get(i)!;
      if (seen >= rank) return Math.min(this.max, i === 0 ? FLOOR_MS : FLOOR_MS * Math.exp(i * GROWTH));
    }
    return this.max;
  }

  summary(): Percentiles {
    const r = (v: number | null) => (v === null ? null : Math.round(v * 100) / 100);
    return {
      count: this.count,
      p50: r(this.quantile(0.5)),
      p90: r(this.quantile(0.9)),
      p99: r(this.quantile(0.99)),
      max: r(this.count ? this.max : null),
      mean: r(this.count ? this.sum / this.count : null),
    };
  }

  toJSON(): HistJson {
    return { count: this.count, sum: this.sum, min: this.count ? this.min : 0, max: this.count ? this.max : 0, buckets: [...this.b.entries()] };
  }

  reset(): void {
    this.b.clear();
    this.count = 0;
    this.sum = 0;
    this.min = Infinity;
    this.max = -Infinity;
  }
}
