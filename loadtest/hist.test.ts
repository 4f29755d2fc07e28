import { describe, expect, it } from 'vitest';
import { Hist } from './hist.ts';

describe('loadtest histogram', () => {
  it('gives percentiles within 1 % and exact count and max, also after a merge', () => {
    const a = new Hist();
    const b = new Hist();
    for (let i = 1; i <= 1000; i++) (i % 2 ? a : b).add(i / 10);
    const m = new Hist();
    m.merge(a.toJSON());
    m.merge(b.toJSON());
    const s = m.summary();
    expect(s.count).toBe(1000);
    expect(s.max).toBe(100);
    expect(s.p50! / 50).toBeGreaterThanOrEqual(1);
    expect(s.p50! / 50).toBeLessThan(1.011);
    expect(s.p99! / 99).toBeGreaterThanOrEqual(1);
    expect(s.p99! / 99).toBeLessThan(1.011);
    expect(new Hist().summary().p99).toBeNull();
  });
});
