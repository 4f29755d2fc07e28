import { describe, expect, it } from 'vitest';
import { sawOfflineThenOnline } from './presence.ts';

const ev = (to: string, address: string, online: boolean, at: number) => ({ to, address, online, at });

describe('sawOfflineThenOnline', () => {
  it('counts a contact only when its watcher saw offline and then online', () => {
    const r = sawOfflineThenOnline([ev('w', 'a', false, 1), ev('w', 'a', true, 2), ev('w', 'b', true, 1), ev('w', 'b', false, 2), ev('x', 'c', false, 1), ev('x', 'c', true, 2)], [
      { watcher: 'w', contact: 'a' },
      { watcher: 'w', contact: 'b' },
      { watcher: 'w', contact: 'c' },
    ]);
    expect(r.sawOfflineThenOnline).toBe(1);
    expect(r.ok).toBe(false);
    expect(r.missing.map((m) => [m.contact, m.seen])).toEqual([
      ['b', 'true,false'],
      ['c', 'nothing'],
    ]);
  });

  it('orders events by time, not by arrival in the list', () => {
    expect(sawOfflineThenOnline([ev('w', 'a', true, 5), ev('w', 'a', false, 3)], [{ watcher: 'w', contact: 'a' }]).ok).toBe(true);
  });
});
