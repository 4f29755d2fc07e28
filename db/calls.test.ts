import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Wallet } from 'ethers';
import { createTestDatabase } from '../testkit/pg.ts';
import { CallStore } from './calls.ts';
import { openDatabase, type Database } from './client.ts';

/** Ringing caps of call.start, on PostgreSQL (concurrent transactions) and on the embedded PGlite. */
describe.each(['postgres', 'pglite'] as const)('CallStore.createLimited on %s', (kind) => {
  let database: Database;
  let drop: () => Promise<void> = async () => undefined;
  let store: CallStore;
  const who = () => Wallet.createRandom().address;
  const caps = (over: Partial<{ maxPerCaller: number; maxPerCallee: number; ringingSince: Date }> = {}) => ({
    maxPerCaller: 3,
    maxPerCallee: 5,
    ringingSince: new Date(Date.now() - 30_000),
    ...over,
  });

  beforeAll(async () => {
    if (kind === 'postgres') {
      const db = await createTestDatabase('calls_store');
      drop = db.drop;
      database = await openDatabase({ url: db.url, dataDir: '', poolSize: 8 });
    } else {
      database = await openDatabase({ url: null, dataDir: 'memory://', poolSize: 1 });
    }
    await database.migrate();
    store = new CallStore(database.db);
  });
  afterAll(async () => {
    await database.close();
    await drop();
  });

  it('refuses a caller with too many calls ringing, until one is answered or ends', async () => {
    const caller = who();
    const callees = [who(), who(), who(), who()];
    const made = [];
    for (const c of callees.slice(0, 3)) made.push(await store.createLimited('audio', caller, [c], caps()));
    expect(made.every((m) => m !== null)).toBe(true);
    expect(await store.createLimited('audio', caller, [callees[3]!], caps())).toBeNull();
    // An answered call no longer rings; an ended one neither.
    await store.transition(made[0]!.call.id, callees[0]!, ['ringing'], 'accepted');
    expect(await store.createLimited('audio', caller, [callees[3]!], caps())).not.toBeNull();
    expect(await store.createLimited('audio', caller, [callees[3]!], caps())).toBeNull();
    await store.end(made[1]!.call.id, 'cancelled');
    expect(await store.createLimited('audio', caller, [who()], caps())).not.toBeNull();
    // Rings older than the ring timeout (not yet swept) do not count.
    expect(await store.createLimited('audio', caller, [who()], caps({ ringingSince: new Date(Date.now() + 1000) }))).not.toBeNull();
  });

  it('marks an invitee rung by too many calls busy instead of ringing it again, even under a concurrent burst', async () => {
    const callee = who();
    const bystander = who();
    const starts = await Promise.all(Array.from({ length: 30 }, () => store.createLimited('video', who(), [callee, bystander], caps({ maxPerCallee: 5 }))));
    expect(starts.every((s) => s !== null)).toBe(true);
    const states = await Promise.all(starts.map(async (s) => (await store.get(s!.call.id))!.participants.find((p) => p.address === callee)!.state));
    expect(states.filter((s) => s === 'ringing')).toHaveLength(5);
    expect(states.filter((s) => s === 'busy')).toHaveLength(25);
    expect(starts.filter((s) => s!.busy.has(callee))).toHaveLength(25);
    // The cap is per callee: the others in the same calls were rung only as far as their own cap.
    const other = await Promise.all(starts.map(async (s) => (await store.get(s!.call.id))!.participants.find((p) => p.address === bystander)!.state));
    expect(other.filter((s) => s === 'ringing')).toHaveLength(5);
  });

  it('counts a caller’s concurrent starts exactly', async () => {
    const caller = who();
    const results = await Promise.all(Array.from({ length: 12 }, () => store.createLimited('audio', caller, [who()], caps({ maxPerCaller: 3 }))));
    expect(results.filter((r) => r !== null)).toHaveLength(3);
  });

  it('still marks invitees who are in another call busy', async () => {
    const inCall = who();
    const first = await store.createLimited('audio', who(), [inCall], caps());
    await store.joined(first!.call.id, inCall, 'dev1', 'conn1');
    const second = await store.createLimited('audio', who(), [inCall], caps());
    expect(second!.busy.has(inCall)).toBe(true);
  });
});
