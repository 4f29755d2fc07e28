import { and, desc, eq, inArray, sql } from 'drizzle-orm';
import type { Db } from './client.ts';
import { blocks, contacts } from './schema.ts';

export interface BlockRow {
  owner: string;
  blocked: string;
  createdAt: Date;
}

/** What `actor` may do towards `peer`, read in one round trip. */
export interface Relation {
  /** `peer` blocked `actor`. */
  blockedByPeer: boolean;
  /** `actor` blocked `peer`. */
  blocking: boolean;
  /** `actor` accepted `peer`: sent it a message, added or accepted it (contacts.shares_presence). */
  accepted: boolean;
}

/** Most addresses one user may block: bounds the list every device syncs. */
export const MAX_BLOCKS_PER_USER = 10_000;

/** Who blocked whom. Hot-path readers go through the signaling node's cache, not here. */
export class BlockStore {
  constructor(private readonly db: Db) {}

  /**
   * Blocks `blocked` for `owner`; `created` is false when it already was (the stored row is
   * answered). Null when the owner's list is full.
   */
  async add(owner: string, blocked: string, max = MAX_BLOCKS_PER_USER): Promise<{ row: BlockRow; created: boolean } | null> {
    // One statement: the count and the insert see the same snapshot. Two devices blocking at
    // the very same moment near the cap may both pass it; the cap is a bound, not an invariant.
    const inserted = await this.db.execute(sql`
      insert into ${blocks} (owner, blocked)
      select ${owner}, ${blocked}
      where (select count(*) from ${blocks} where owner = ${owner}) < ${max}
      on conflict (owner, blocked) do nothing
      returning owner, blocked, created_at`);
    const fresh = rowsOf<{ owner: string; blocked: string; created_at: Date | string }>(inserted)[0];
    if (fresh) return { row: { owner: fresh.owner, blocked: fresh.blocked, createdAt: toDate(fresh.created_at) }, created: true };
    const [existing] = await this.db.select().from(blocks).where(and(eq(blocks.owner, owner), eq(blocks.blocked, blocked)));
    return existing ? { row: existing, created: false } : null;
  }

  async remove(owner: string, blocked: string): Promise<boolean> {
    const rows = await this.db.delete(blocks).where(and(eq(blocks.owner, owner), eq(blocks.blocked, blocked))).returning({ owner: blocks.owner });
    return rows.length > 0;
  }

  /** Newest first. */
  async list(owner: string): Promise<BlockRow[]> {
    return this.db.select().from(blocks).where(eq(blocks.owner, owner)).orderBy(desc(blocks.createdAt)).limit(MAX_BLOCKS_PER_USER);
  }

  /** `owner` blocked `other` (one primary-key probe). */
  async isBlocked(owner: string, other: string): Promise<boolean> {
    const rows = await this.db.select({ owner: blocks.owner }).from(blocks).where(and(eq(blocks.owner, owner), eq(blocks.blocked, other))).limit(1);
    return rows.length > 0;
  }

  /** Which of `owners` blocked `other` (one query, for adding many people to a group at once). */
  async blockersOf(other: string, owners: string[]): Promise<Set<string>> {
    if (owners.length === 0) return new Set();
    const rows = await this.db.select({ owner: blocks.owner }).from(blocks).where(and(eq(blocks.blocked, other), inArray(blocks.owner, owners)));
    return new Set(rows.map((r) => r.owner));
  }

  /** What the node checks before relaying typing, receipts or a ring, in one query. */
  async relation(actor: string, peer: string): Promise<Relation> {
    const result = await this.db.execute(sql`
      select
        exists (select 1 from ${blocks} where owner = ${peer} and blocked = ${actor}) as blocked,
        exists (select 1 from ${blocks} where owner = ${actor} and blocked = ${peer}) as blocking,
        coalesce((select shares_presence from ${contacts} where owner = ${actor} and peer = ${peer}), false) as accepted`);
    const row = rowsOf<{ blocked: boolean; blocking: boolean; accepted: boolean }>(result)[0];
    return { blockedByPeer: row?.blocked === true, blocking: row?.blocking === true, accepted: row?.accepted === true };
  }
}

/** node-postgres answers `{ rows }`, PGlite too; drizzle's execute type differs per driver. */
function rowsOf<T>(result: unknown): T[] {
  return ((result as { rows?: T[] }).rows ?? (result as T[])) as T[];
}

function toDate(v: Date | string): Date {
  return v instanceof Date ? v : new Date(v);
}
