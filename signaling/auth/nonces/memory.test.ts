import { afterEach, describe, expect, it, vi } from 'vitest';
import { MemoryNonceStore } from './memory.ts';

const size = (s: MemoryNonceStore) => (s as unknown as { nonces: Map<string, number> }).nonces.size;
const clock = (ms: number) => vi.spyOn(Date, 'now').mockReturnValue(ms);

afterEach(() => {
  vi.restoreAllMocks();
});

describe('MemoryNonceStore', () => {
  it('consumes an issued nonce once, until the moment it expires', async () => {
    const s = new MemoryNonceStore();
    clock(1_000);
    await s.issue('a', 10);
    await s.issue('b', 10);
    await s.issue('c', 10);
    clock(10_999);
    expect(await s.consume('a')).toBe(true);
    expect(await s.consume('a')).toBe(false);
    clock(11_000);
    expect(await s.consume('b')).toBe(false);
    // An expired nonce is dropped when someone tries it.
    expect(size(s)).toBe(1);
    expect(await s.consume('unknown')).toBe(false);
  });

  it('prunes expired nonces once it holds more than ten thousand', async () => {
    const s = new MemoryNonceStore();
    clock(1_000);
    for (let i = 0; i < 9_999; i++) await s.issue(`old-${i}`, 0);
    await s.issue('live', 60);
    clock(2_000);
    // 10 000 held: no pruning yet on this issue.
    await s.issue('edge', 0);
    expect(size(s)).toBe(10_001);
    // More than 10 000: the expired ones go, including one expiring at this very moment.
    await s.issue('new', 60);
    expect(size(s)).toBe(2);
    expect(await s.consume('live')).toBe(true);
    expect(await s.consume('new')).toBe(true);
  });
});
