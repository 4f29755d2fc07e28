import { and, desc, eq, gt, inArray, isNull, lt, sql } from 'drizzle-orm';
import type { Db } from './client.ts';
import { callParticipants, calls } from './schema.ts';

export type CallKind = 'audio' | 'video';
export type ParticipantState = 'ringing' | 'accepted' | 'rejected' | 'missed' | 'busy' | 'joined' | 'left';
export type EndReason = 'completed' | 'missed' | 'rejected' | 'cancelled' | 'busy' | 'failed';

export type CallRow = typeof calls.$inferSelect;
export type ParticipantRow = typeof callParticipants.$inferSelect;

/** Call records: the call, and one row per participant with how and when they took part. */
export class CallStore {
  constructor(private readonly db: Db) {}

  /**
   * Creates a call unless the caller already has `maxPerCaller` calls ringing (then null).
   * Invitees in an ongoing call, or already rung by `maxPerCallee` calls, are recorded as
   * busy and not rung. Concurrent starts touching the same people are serialized by
   * transaction-scoped advisory locks, so the caps hold under a burst.
   */
  async createLimited(
    kind: CallKind,
    initiator: string,
    invitees: string[],
    caps: { maxPerCaller: number; maxPerCallee: number; ringingSince: Date },
  ): Promise<{ call: CallRow; busy: Set<string> } | null> {
    return this.db.transaction(async (tx) => {
      for (const who of [...new Set([initiator, ...invitees])].sort()) {
        await tx.execute(sql`select pg_advisory_xact_lock(hashtextextended(${`brtc-call:${who}`}, 0))`);
      }
      const [mine] = await tx
        .select({ n: sql<number>`count(distinct ${calls.id})::int` })
        .from(calls)
        .innerJoin(callParticipants, eq(callParticipants.callId, calls.id))
        .where(and(eq(calls.initiator, initiator), isNull(calls.endedAt), eq(callParticipants.state, 'ringing'), gt(callParticipants.invitedAt, caps.ringingSince)));
      if ((mine?.n ?? 0) >= caps.maxPerCaller) return null;
      const busy = new Set<string>();
      if (invitees.length > 0) {
        const inCall = await tx
          .select({ address: callParticipants.address })
          .from(callParticipants)
          .innerJoin(calls, eq(calls.id, callParticipants.callId))
          .where(and(inArray(callParticipants.address, invitees), eq(callParticipants.state, 'joined'), isNull(calls.endedAt)));
        for (const r of inCall) busy.add(r.address);
        const rung = await tx
          .select({ address: callParticipants.address, n: sql<number>`count(*)::int` })
          .from(callParticipants)
          .innerJoin(calls, eq(calls.id, callParticipants.callId))
          .where(and(inArray(callParticipants.address, invitees), eq(callParticipants.state, 'ringing'), isNull(calls.endedAt), gt(callParticipants.invitedAt, caps.ringingSince)))
          .groupBy(callParticipants.address);
        for (const r of rung) if (r.n >= caps.maxPerCallee) busy.add(r.address);
      }
      const [call] = await tx.insert(calls).values({ kind, initiator }).returning();
      await tx.insert(callParticipants).values([
        { callId: call!.id, address: initiator, role: 'initiator', state: 'accepted', answeredAt: sql`now()` },
        ...invitees.map((address) => ({ callId: call!.id, address, role: 'invitee' as const, state: busy.has(address) ? 'busy' : 'ringing' })),
      ]);
      return { call: call!, busy };
    });
  }

  /** A call to a group: only the caller has a row; members get theirs when they answer or join (addMember). */
  async createForGroup(kind: CallKind, initiator: string, groupId: string): Promise<CallRow> {
    return this.db.transaction(async (tx) => {
      const [call] = await tx.insert(calls).values({ kind, initiator, groupId }).returning();
      await tx.insert(callParticipants).values({ callId: call!.id, address: initiator, role: 'initiator', state: 'accepted', answeredAt: sql`now()` });
      return call!;
    });
  }

  /**
   * Gives a group member a (ringing) row in its group's call unless `max` people are already
   * in it (accepted or joined); true when the member has a row now. Serialized per call.
   */
  async addMember(callId: string, address: string, max: number): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      await tx.execute(sql`select pg_advisory_xact_lock(hashtextextended(${`brtc-call-members:${callId}`}, 0))`);
      const [n] = await tx
        .select({ n: sql<number>`count(*)::int` })
        .from(callParticipants)
        .where(and(eq(callParticipants.callId, callId), inArray(callParticipants.state, ['accepted', 'joined'])));
      if ((n?.n ?? 0) >= max) return false;
      await tx.insert(callParticipants).values({ callId, address, role: 'invitee', state: 'ringing' }).onConflictDoNothing();
      return true;
    });
  }

  async get(callId: string): Promise<{ call: CallRow; participants: ParticipantRow[] } | null> {
    const [call] = await this.db.select().from(calls).where(eq(calls.id, callId));
    if (!call) return null;
    const participants = await this.db.select().from(callParticipants).where(eq(callParticipants.callId, callId));
    return { call, participants };
  }

  /** Moves a participant between states; false if it was not in one of `from`. */
  async transition(callId: string, address: string, from: ParticipantState[], to: ParticipantState): Promise<boolean> {
    const rows = await this.db
      .update(callParticipants)
      .set({ state: to, ...(to === 'accepted' || to === 'rejected' ? { answeredAt: sql`now()` } : {}) })
      .where(and(eq(callParticipants.callId, callId), eq(callParticipants.address, address), inArray(callParticipants.state, from)))
      .returning({ state: callParticipants.state });
    return rows.length > 0;
  }

  async markAnswered(callId: string): Promise<void> {
    await this.db.update(calls).set({ answeredAt: sql`coalesce(${calls.answeredAt}, now())` }).where(eq(calls.id, callId));
  }

  async joined(callId: string, address: string, device: string, session: string): Promise<boolean> {
    const rows = await this.db
      .update(callParticipants)
      .set({ state: 'joined', device, session, joinedAt: sql`coalesce(${callParticipants.joinedAt}, now())`, leftAt: null, answeredAt: sql`coalesce(${callParticipants.answeredAt}, now())` })
      .where(and(eq(callParticipants.callId, callId), eq(callParticipants.address, address), inArray(callParticipants.state, ['ringing', 'accepted', 'joined', 'left'])))
      .returning({ state: callParticipants.state });
    return rows.length > 0;
  }

  /** Leaves; with `session`, only if that connection is still the one in the call. */
  async left(callId: string, address: string, session?: string): Promise<boolean> {
    const rows = await this.db
      .update(callParticipants)
      .set({ state: 'left', leftAt: sql`now()` })
      .where(and(eq(callParticipants.callId, callId), eq(callParticipants.address, address), eq(callParticipants.state, 'joined'), session ? eq(callParticipants.session, session) : undefined))
      .returning({ state: callParticipants.state });
    return rows.length > 0;
  }

  async countIn(callId: string, states: ParticipantState[]): Promise<number> {
    const [r] = await this.db
      .select({ n: sql<number>`count(*)::int` })
      .from(callParticipants)
      .where(and(eq(callParticipants.callId, callId), inArray(callParticipants.state, states)));
    return r?.n ?? 0;
  }

  /** Ends the call once (concurrent callers: one wins); closes what is still open. */
  async end(callId: string, reason: EndReason): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const ended = await tx
        .update(calls)
        .set({ endedAt: sql`now()`, endReason: reason })
        .where(and(eq(calls.id, callId), isNull(calls.endedAt)))
        .returning({ id: calls.id });
      if (ended.length === 0) return false;
      await tx.update(callParticipants).set({ state: 'missed' }).where(and(eq(callParticipants.callId, callId), eq(callParticipants.state, 'ringing')));
      await tx
        .update(callParticipants)
        .set({ state: 'left', leftAt: sql`now()` })
        .where(and(eq(callParticipants.callId, callId), eq(callParticipants.state, 'joined')));
      return true;
    });
  }

  /** Invitations that rang too long become missed; returns them. */
  async expireRinging(olderThan: Date): Promise<{ callId: string; address: string }[]> {
    return this.db
      .update(callParticipants)
      .set({ state: 'missed' })
      .where(and(eq(callParticipants.state, 'ringing'), lt(callParticipants.invitedAt, olderThan)))
      .returning({ callId: callParticipants.callId, address: callParticipants.address });
  }

  async setPlacement(callId: string, node: string, worker: number): Promise<void> {
    await this.db.update(calls).set({ sfuNode: node, sfuWorker: worker }).where(eq(calls.id, callId));
  }

  async history(address: string, before: Date | null, limit: number): Promise<{ call: CallRow; participants: ParticipantRow[] }[]> {
    const mine = await this.db
      .select({ callId: callParticipants.callId, invitedAt: callParticipants.invitedAt })
      .from(callParticipants)
      .where(and(eq(callParticipants.address, address), before ? lt(callParticipants.invitedAt, before) : undefined))
      .orderBy(desc(callParticipants.invitedAt))
      .limit(limit);
    if (mine.length === 0) return [];
    const ids = mine.map((m) => m.callId);
    const [callRows, parts] = await Promise.all([
      this.db.select().from(calls).where(inArray(calls.id, ids)),
      this.db.select().from(callParticipants).where(inArray(callParticipants.callId, ids)),
    ]);
    const byId = new Map(callRows.map((c) => [c.id, c]));
    return ids.map((id) => ({ call: byId.get(id)!, participants: parts.filter((p) => p.callId === id) }));
  }
}
