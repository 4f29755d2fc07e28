import { eq } from 'drizzle-orm';
import type { Db } from './client.ts';
import { attachments } from './schema.ts';

export interface AttachmentMeta {
  id: string;
  owner: string;
  peer: string;
  mime: string;
  size: number;
}

export class AttachmentStore {
  constructor(private readonly db: Db) {}

  async put(owner: string, peer: string, mime: string, data: Buffer): Promise<AttachmentMeta> {
    const [row] = await this.db
      .insert(attachments)
      .values({ owner, peer, mime, size: data.length, data })
      .returning({ id: attachments.id, owner: attachments.owner, peer: attachments.peer, mime: attachments.mime, size: attachments.size });
    if (!row) throw new Error('attachment insert returned nothing');
    return row;
  }

  async meta(id: string): Promise<AttachmentMeta | null> {
    const [row] = await this.db
      .select({ id: attachments.id, owner: attachments.owner, peer: attachments.peer, mime: attachments.mime, size: attachments.size })
      .from(attachments)
      .where(eq(attachments.id, id));
    return row ?? null;
  }

  async get(id: string): Promise<(AttachmentMeta & { data: Buffer }) | null> {
    const [row] = await this.db.select().from(attachments).where(eq(attachments.id, id));
    return row ? { id: row.id, owner: row.owner, peer: row.peer, mime: row.mime, size: row.size, data: row.data } : null;
  }
}
