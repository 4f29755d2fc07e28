import { checksumAddress } from '../address.ts';
import type { ContactRow, ContactStore } from '../../db/contacts.ts';
import { conversationKey, type MessageStore } from '../../db/messages.ts';
import type { UserStore } from '../../db/users.ts';
import type { Contact, PresenceState, Request, ResultMap } from '../../protocol/index.ts';
import { BlockRtcError } from '../../protocol/errors.ts';
import type { Logger } from '../../infra/logger.ts';
import type { Events } from '../events.ts';
import type { Relations } from '../requests/relations.ts';
import type { Connection } from '../ws/connection.ts';
import type { PresenceRecord, PresenceStore } from './store.ts';

/**
 * Online/offline transitions (first and last device of a user, on any node) pushed to the
 * users that have this user as a contact and with whom this user shares its presence (it sent
 * them a message or added them) — never broadcast to everyone. Queries answer the same rule.
 */
export class PresenceService {
  constructor(
    private readonly deps: {
      store: PresenceStore;
      contacts: ContactStore;
      messages: MessageStore;
      users: UserStore;
      events: Events;
      relations: Relations;
      log: Logger;
    },
  ) {}

  async connected(conn: Connection): Promise<void> {
    const first = await this.deps.store.connect(conn.address, conn.id);
    if (first) await this.announce({ address: conn.address, online: true, lastSeen: null });
  }

  async disconnected(conn: Connection): Promise<void> {
    const at = Date.now();
    const last = await this.deps.store.disconnect(conn.address, conn.id, at);
    if (last) await this.wentOffline(conn.address, at);
  }

  /** Users of dead nodes found by the sweep. */
  async wentOffline(address: string, at: number): Promise<void> {
    await this.deps.users.setLastSeen([address], new Date(at)).catch((err: unknown) => this.deps.log.warn({ err }, 'last seen not stored'));
    await this.announce({ address, online: false, lastSeen: new Date(at).toISOString() });
  }

  /**
   * What `viewer` may know of these users: a user's presence is answered only to the users it
   * shares it with (and to itself); the others are unknown (`online: null`).
   */
  async query(viewer: string, addresses: string[]): Promise<PresenceState[]> {
    const checked = addresses.map((a) => checksumAddress(a));
    const others = [...new Set(checked.filter((a) => a !== viewer))];
    const sharing = await this.deps.contacts.sharingWith(viewer, others);
    const visible = [...new Set(checked.filter((a) => a === viewer || sharing.has(a)))];
    const live = visible.length ? await this.deps.store.query(visible) : new Map<string, PresenceRecord>();
    const unseen = visible.filter((a) => !live.get(a)?.online && live.get(a)?.lastSeen == null);
    const stored = unseen.length ? await this.deps.users.lastSeen(unseen) : new Map<string, Date | null>();
    return checked.map((a) => {
      if (a !== viewer && !sharing.has(a)) return { address: a, online: null, lastSeen: null };
      const r = live.get(a);
      if (r?.online) return { address: a, online: true, lastSeen: null };
      const seen = r?.lastSeen != null ? new Date(r.lastSeen) : (stored.get(a) ?? null);
      return { address: a, online: false, lastSeen: seen ? seen.toISOString() : null };
    });
  }

  /** The main list: conversations the user accepted (requests are listed by requests.list). */
  async listContacts(conn: Connection): Promise<ResultMap['contacts.list']> {
    const rows = await this.deps.contacts.list(conn.address, 500, 'accepted');
    return { contacts: await this.describe(conn.address, rows) };
  }

  async addContact(conn: Connection, req: Request<'contacts.add'>): Promise<ResultMap['contacts.add']> {
    const peer = checksumAddress(req.address);
    if (peer === conn.address) throw new BlockRtcError('SELF_MESSAGE', 'You cannot add yourself as a contact');
    const { startedSharing, ...row } = await this.deps.contacts.add(conn.address, peer);
    if (startedSharing) {
      // Adding accepts a request from the peer too.
      this.deps.relations.changed(conn.address, peer);
      await this.startedSharing(conn.address, peer);
    }
    const [contact] = await this.describe(conn.address, [row]);
    return { contact: contact! };
  }

  /**
   * `owner` (online: it just acted) now shares its presence with `peer`, which may have it as
   * a contact already and see it as unknown: tell it now, unless the owner blocked it.
   */
  async startedSharing(owner: string, peer: string): Promise<void> {
    if ((await this.deps.contacts.sharingWith(peer, [owner])).has(owner)) {
      this.deps.events.toUsers([peer], 'presence.update', { address: owner, online: true, lastSeen: null });
    }
  }

  /** Conversation rows as the wire's contacts: presence as `owner` may see it, last message, unread. */
  async describe(owner: string, rows: ContactRow[]): Promise<Contact[]> {
    if (rows.length === 0) return [];
    const [presence, last] = await Promise.all([
      this.query(owner, rows.map((r) => r.peer)),
      this.deps.messages.byIds(rows.filter((r) => r.lastMessageId !== null).map((r) => ({ conversation: conversationKey(owner, r.peer), id: r.lastMessageId! }))),
    ]);
    const byId = new Map(last.map((m) => [m.id, m]));
    return rows.map((r, i) => {
      const m = r.lastMessageId !== null ? byId.get(r.lastMessageId) : undefined;
      return {
        address: r.peer,
        presence: presence[i]!,
        lastMessage: m ? { id: m.id.toString(), from: m.sender, kind: m.kind, text: m.body, createdAt: m.createdAt.toISOString() } : null,
        unread: r.unread,
      };
    });
  }

  private async announce(state: PresenceState): Promise<void> {
    const watchers = await this.deps.contacts.watchers(state.address);
    if (watchers.length === 0) return;
    this.deps.events.toUsers(watchers, 'presence.update', state);
  }
}
