import { describe, expect, it } from 'vitest';
import type { Relation } from '../../db/blocks.ts';
import { mayReach, RelationCache } from './relations.ts';

const open: Relation = { blockedByPeer: false, blocking: false, accepted: true };

function setup(ttlMs = 60_000) {
  let now = 1_000;
  const state = new Map<string, Relation>();
  const loads: string[] = [];
  const notes: [string, string][] = [];
  let gate: Promise<void> | null = null;
  const cache = new RelationCache(
    async (actor, peer) => {
      loads.push(`${actor}>${peer}`);
      const value = state.get(`${actor}>${peer}`) ?? { ...open, accepted: false };
      if (gate) await gate;
      return value;
    },
    (actor, peer) => void notes.push([actor, peer]),
    async () => new Set(),
    ttlMs,
    () => now,
  );
  return {
    cache,
    state,
    loads,
    notes,
    tick: (ms: number) => (now += ms),
    hold: () => {
      let release!: () => void;
      gate = new Promise((r) => (release = r));
      return () => {
        gate = null;
        release();
      };
    },
  };
}

describe('RelationCache', () => {
  it('reads a relation once and answers from memory until its TTL', async () => {
    const t = setup(1000);
    t.state.set('a>b', open);
    expect(await t.cache.get('a', 'b')).toEqual(open);
    expect(await t.cache.get('a', 'b')).toEqual(open);
    expect(t.loads).toEqual(['a>b']);
    t.tick(1001);
    await t.cache.get('a', 'b');
    expect(t.loads).toEqual(['a>b', 'a>b']);
  });

  it('drops one entry on a note, every entry of a user on forget, and publishes changes', async () => {
    const t = setup();
    await t.cache.get('a', 'b');
    await t.cache.get('a', 'c');
    t.state.set('a>b', { ...open, blockedByPeer: true });
    t.cache.invalidate('a', 'b');
    expect(await t.cache.get('a', 'b')).toMatchObject({ blockedByPeer: true });
    await t.cache.get('a', 'c');
    expect(t.loads).toEqual(['a>b', 'a>c', 'a>b']);
    t.cache.forget('a');
    await t.cache.get('a', 'c');
    expect(t.loads.at(-1)).toBe('a>c');
    t.cache.changed('a', 'c');
    expect(t.notes).toEqual([['a', 'c']]);
    await t.cache.get('a', 'c');
    expect(t.loads.filter((l) => l === 'a>c')).toHaveLength(3);
  });

  it('does not keep a load that overlapped an invalidation', async () => {
    const t = setup();
    const release = t.hold();
    const pending = t.cache.get('a', 'b');
    t.cache.invalidate('a', 'b');
    release();
    expect(await pending).toMatchObject({ accepted: false });
    t.state.set('a>b', open);
    expect(await t.cache.get('a', 'b')).toEqual(open);
  });

  it('publishes a first message once per node, not once per message, even when nothing was ever read', async () => {
    const t = setup();
    t.cache.sent('a', 'b');
    t.cache.sent('a', 'b');
    t.cache.sent('a', 'c');
    expect(t.notes).toEqual([
      ['a', 'b'],
      ['a', 'c'],
    ]);
    expect(t.loads).toEqual([]);
    t.state.set('a>b', open);
    await t.cache.get('a', 'b');
    t.cache.sent('a', 'b');
    expect(t.notes).toHaveLength(2);
    // A user that comes back to this node announces again (notes may have been missed meanwhile).
    t.cache.forget('a');
    t.cache.sent('a', 'c');
    expect(t.notes).toHaveLength(3);
  });

  it('lets signals through only when accepted and nobody blocked anyone', () => {
    expect(mayReach(open)).toBe(true);
    expect(mayReach({ ...open, accepted: false })).toBe(false);
    expect(mayReach({ ...open, blockedByPeer: true })).toBe(false);
    expect(mayReach({ ...open, blocking: true })).toBe(false);
  });
});
