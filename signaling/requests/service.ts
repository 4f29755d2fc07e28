import { checksumAddress } from '../address.ts';
import type { BlockRow, BlockStore } from '../../db/blocks.ts';
import type { ContactStore } from '../../db/contacts.ts';
import { BlockRtcError } from '../../protocol/errors.ts';
import type { BlockEntry, Request, ResultMap } from '../../protocol/index.ts';
import type { Events } from '../events.ts';
import type { PresenceService } from '../presence/service.ts';
import { DB_RETRY_AFTER_MS, isConnectivityError } from '../chat/writer.ts';
import type { Connection } from '../ws/connection.ts';
import type { Relations } from './relations.ts';

/** PostgreSQL unreachable is a retryable UNAVAILABLE, as in chat, not INTERNAL. */
async function store<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    if (isConnectivityError(err)) throw new BlockRtcError('UNAVAILABLE', 'The database is unreachable; try again', { retryAfterMs: DB_RETRY_AFTER_MS });
    throw err;
  }
}

const toEntry = (r: BlockRow): BlockEntry => ({ address: r.blocked, blockedAt: r.createdAt.toISOString() });

/**
 * Message requests (conversations the owner has not accepted) and the owner's block list.
 * Every change reaches the owner's other devices as an event, and the nodes that relay
 * typing, receipts and rings as a cache note (Relations.changed).
 */
export class RequestsService {
  constructor(
    private readonly deps: {
      contacts: ContactStore;
      blocks: BlockStore;
      presence: PresenceService;
      relations: Relations;
      events: Events;
    },
  ) {}

  async list(conn: Connection): Promise<ResultMap['requests.list']> {
    const rows = await store(this.deps.contacts.list(conn.address, 500, 'requests'));
    return { requests: await this.deps.presence.describe(conn.address, rows) };
  }

  async accept(conn: Connection, req: Request<'requests.accept'>): Promise<ResultMap['requests.accept']> {
    const peer = this.other(conn, req.address, 'SELF_MESSAGE');
    const accepted = await store(this.deps.contacts.accept(conn.address, peer));
    if (!accepted) throw new BlockRtcError('REQUEST_NOT_FOUND');
    const { startedSharing, ...row } = accepted;
    if (startedSharing) {
      this.deps.relations.changed(conn.address, peer);
      await this.deps.presence.startedSharing(conn.address, peer);
      this.deps.events.toUser(conn.address, 'requests.changed', { address: peer, action: 'accepted' }, { skip: conn.id });
    }
    const [contact] = await this.deps.presence.describe(conn.address, [row]);
    return { contact: contact! };
  }

  async delete(conn: Connection, req: Request<'requests.delete'>): Promise<ResultMap['requests.delete']> {
    const peer = this.other(conn, req.address, 'SELF_MESSAGE');
    if (!(await store(this.deps.contacts.deleteRequest(conn.address, peer)))) throw new BlockRtcError('REQUEST_NOT_FOUND');
    this.deps.events.toUser(conn.address, 'requests.changed', { address: peer, action: 'deleted' }, { skip: conn.id });
    return {};
  }

  async blocks(conn: Connection): Promise<ResultMap['blocks.list']> {
    return { blocks: (await store(this.deps.blocks.list(conn.address))).map(toEntry) };
  }

  async block(conn: Connection, req: Request<'blocks.add'>): Promise<ResultMap['blocks.add']> {
    const peer = this.other(conn, req.address, 'BLOCK_SELF');
    const added = await store(this.deps.blocks.add(conn.address, peer));
    if (!added) throw new BlockRtcError('BLOCK_LIMIT');
    if (added.created) this.blockChanged(conn, peer, true, added.row.createdAt);
    return { block: toEntry(added.row) };
  }

  async unblock(conn: Connection, req: Request<'blocks.remove'>): Promise<ResultMap['blocks.remove']> {
    const peer = this.other(conn, req.address, 'BLOCK_SELF');
    const removed = await store(this.deps.blocks.remove(conn.address, peer));
    if (removed) this.blockChanged(conn, peer, false, new Date());
    return { removed };
  }

  /**
   * Both directions change: what the blocked user may do towards the blocker and the other
   * way round. The blocked user is sent nothing it could read: the note goes to nodes, not
   * sockets.
   */
  private blockChanged(conn: Connection, peer: string, blocked: boolean, at: Date): void {
    this.deps.relations.changed(peer, conn.address);
    this.deps.relations.changed(conn.address, peer);
    this.deps.events.toUser(conn.address, 'blocks.changed', { address: peer, blocked, at: at.toISOString() }, { skip: conn.id });
  }

  private other(conn: Connection, address: string, self: 'SELF_MESSAGE' | 'BLOCK_SELF'): string {
    const peer = checksumAddress(address);
    if (peer === conn.address) throw new BlockRtcError(self, self === 'SELF_MESSAGE' ? 'You cannot have a conversation with yourself' : undefined);
    return peer;
  }
}
