import { and, eq, lt, sql } from 'drizzle-orm';
import type { Db } from './client.ts';
import { attachments, messages } from './schema.ts';

export interface AttachmentMeta {
  id: string;
  owner: string;
  peer: string;
  mime: string;
  size: number;
}

const META = { id: attachments.id, owner: attachments.owner, peer: attachments.peer, mime: attachments.mime, size: attachments.size };

/** Blobs are read in pieces of this size when streamed. */
export const CHUNK_BYTES = 256 * 1024;

export class AttachmentStore {
  constructor(private readonly db: Db) {}

  async put(owner: string, peer: string, mime: string, data: Buffer): Promise<AttachmentMeta> {
    const [row] = await this.db.insert(attachments).values({ owner, peer, mime, size: data.length, data }).returning(META);
    if (!row) throw new Error('attachment insert returned nothing');
    return row;
  }

  /** Bytes the owner has stored. */
  async usage(owner: string): Promise<number> {
    const [row] = await this.db
      .select({ total: sql<string>`coalesce(sum(${attachments.size}), 0)` })
      .from(attachments)
      .where(eq(attachments.owner, owner));
    return Number(row?.total ?? 0);
  }

  async meta(id: string): Promise<AttachmentMeta | null> {
    const [row] = await this.db.select(META).from(attachments).where(eq(attachments.id, id));
    return row ?? null;
  }

  async get(id: string): Promise<(AttachmentMeta & { data: Buffer }) | null> {
    const [row] = await this.db.select().from(attachments).where(eq(attachments.id, id));
    return row ? { id: row.id, owner: row.owner, peer: row.peer, mime: row.mime, size: row.size, data: row.data } : null;
  }

  /** The blob in pieces of `chunk` bytes, each read by its own query: never all of it in memory. */
  async *chunks(id: string, size: number, chunk = CHUNK_BYTES): AsyncGenerator<Buffer> {
    for (let off = 0; off < size; off += chunk) {
      const [row] = await this.db
        .select({ part: sql<Buffer | Uint8Array>`substring(${attachments.data} from ${off + 1} for ${chunk})` })
        .from(attachments)
        .where(eq(attachments.id, id));
      if (!row) return;
      const part = Buffer.isBuffer(row.part) ? row.part : Buffer.from(row.part);
      if (part.length === 0) return;
      yield part;
    }
  }

  /** Removes uploads older than `olderThanSec` that no message refers to; returns how many. */
  async sweepOrphans(olderThanSec: number): Promise<number> {
    const cutoff = new Date(Date.now() - olderThanSec * 1000);
    const removed = await this.db
      .delete(attachments)
      .where(and(lt(attachments.createdAt, cutoff), sql`not exists (select 1 from ${messages} where ${messages.attachmentId} = ${attachments.id})`))
      .returning({ id: attachments.id });
    return removed.length;
  }
}
