import { afterEach, describe, expect, it, vi } from 'vitest';
import type { GroupReceiptCount } from '../../protocol/index.ts';
import { GroupReceiptCounter } from './group-receipts.ts';

const G = '0b3c4d5e-0000-4000-8000-00000000000a';

afterEach(() => vi.useRealTimers());

function counter(answer: (ids: string[]) => GroupReceiptCount[] | Error) {
  const asked: { group: string; ids: string[]; details?: boolean }[] = [];
  const applied: string[] = [];
  const c = new GroupReceiptCounter(
    async (payload) => {
      asked.push({ group: payload.group, ids: payload.ids, ...(payload.details ? { details: true } : {}) });
      const r = answer(payload.ids);
      if (r instanceof Error) throw r;
      return { receipts: r };
    },
    (_group, count) => applied.push(`${count.id}:${count.read}/${count.of}`),
    10,
  );
  return { c, asked, applied };
}

describe('GroupReceiptCounter', () => {
  it('asks once for everything wanted within the delay, newest first, at most 100 ids a request', async () => {
    vi.useFakeTimers();
    const { c, asked, applied } = counter((ids) => ids.map((id) => ({ id, of: 2, delivered: 2, read: 1 })));
    c.want(G, Array.from({ length: 150 }, (_, i) => String(i + 1)));
    c.want(G, ['5', '150']);
    expect(asked).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(10);
    expect(asked.map((a) => a.ids.length)).toEqual([100, 50]);
    expect(asked[0]!.ids[0]).toBe('150');
    expect(asked[1]!.ids.at(-1)).toBe('1');
    expect(applied).toHaveLength(150);
  });

  it('a failed request is dropped quietly (asked again with the next want)', async () => {
    vi.useFakeTimers();
    let fail = true;
    const { c, asked, applied } = counter((ids) => (fail ? new Error('UNAVAILABLE') : ids.map((id) => ({ id, of: 1, delivered: 1, read: 1 }))));
    c.want(G, ['7']);
    await vi.advanceTimersByTimeAsync(10);
    expect(applied).toEqual([]);
    fail = false;
    c.want(G, ['7']);
    await vi.advanceTimersByTimeAsync(10);
    expect(asked).toHaveLength(2);
    expect(applied).toEqual(['7:1/1']);
  });

  it('details are asked at once and also update the counts; clear() forgets what was wanted', async () => {
    vi.useFakeTimers();
    const { c, asked, applied } = counter(() => [{ id: '9', of: 2, delivered: 2, read: 2, deliveredBy: ['a', 'b'], readBy: ['a', 'b'] }]);
    expect(await c.details(G, '9')).toMatchObject({ readBy: ['a', 'b'] });
    expect(asked).toEqual([{ group: G, ids: ['9'], details: true }]);
    expect(applied).toEqual(['9:2/2']);
    c.want(G, ['10']);
    c.clear();
    await vi.advanceTimersByTimeAsync(50);
    expect(asked).toHaveLength(1);
  });
});
