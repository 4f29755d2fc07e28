import { checksumAddress } from '../address.ts';
import type { Config } from '../../config/config.ts';
import type { AttachmentStore } from '../../db/attachments.ts';
import { groupConversation, type GroupMessageRow, type GroupStore, type MemberRow } from '../../db/groups.ts';
import { LogThrottle, type Logger } from '../../infra/logger.ts';
import { BlockRtcError } from '../../protocol/errors.ts';
import { encodeEvent } from '../../protocol/frames.ts';
import type { GroupInfo, Request, ResultMap, TokenGate } from '../../protocol/index.ts';
import { DB_RETRY_AFTER_MS, isConnectivityError, type GroupCommitWriter } from '../chat/writer.ts';
import type { Events } from '../events.ts';
import type { Metrics } from '../metrics.ts';
import { enforceLimit } from '../ratelimit/enforce.ts';
import type { RateLimiter } from '../ratelimit/limiter.ts';
import type { Connection } from '../ws/connection.ts';
import { encodeGroupControl, type GroupFanout } from './fanout.ts';
import type { GateKeeper, GateRevocation } from './gate-keeper.ts';
import { toGroupInfo, toGroupMember, toGroupMessage } from './mapper.ts';

/** What adding someone to a group does: they join, they get an invitation to accept, or nothing. */
export type InviteDecision = 'join' | 'invite' | 'refuse';

/** A read or update that failed because PostgreSQL is unreachable is a retryable UNAVAILABLE, not INTERNAL. */
async function store<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    if (isConnectivityError(err)) throw new BlockRtcError('UNAVAILABLE', 'The group store is unreachable; try again', { retryAfterMs: DB_RETRY_AFTER_MS });
    throw err;
  }
}

/** After a membership change commits: what to tell whom. */
interface Change {
  messages: GroupMessageRow[];
  /** Became active members: their nodes subscribe, their devices hear it. */
  joined: MemberRow[];
  invited: MemberRow[];
  /** No longer members (removed, left). */
  gone: { address: string; state: 'removed' | 'left'; reason?: GateRevocation }[];
}

const noChange = (): Change => ({ messages: [], joined: [], invited: [], gone: [] });

/**
 * Group conversations: membership and roles (in PostgreSQL, each change in one transaction
 * with its system message), messages (stored once per group through the group-commit
 * writer, acked after commit), per-member receipt cursors, and delivery through the
 * group's channel (one publish per event, see GroupFanout).
 */
export class GroupService {
  private readonly limiterWarnings = new LogThrottle();

  constructor(
    private readonly deps: {
      config: Config;
      groups: GroupStore;
      /** Which of the invitees blocked the adder (BlockStore.blockersOf). */
      blockersOf: (adder: string, invitees: string[]) => Promise<Set<string>>;
      attachments: AttachmentStore;
      writer: GroupCommitWriter;
      events: Events;
      fanout: GroupFanout;
      /** Token gates: admission of new members (fail closed). */
      gates: Pick<GateKeeper, 'admit' | 'admitAll'>;
      limiter: RateLimiter;
      metrics: Metrics;
      log: Logger;
    },
  ) {}

  /**
   * THE check point for putting `invitees` in a group by `adder`: 'join' when the invitee
   * accepted the adder before (took part in a conversation with them or added them:
   * contacts.shares_presence on the invitee's row), 'invite' otherwise (they must accept),
   * 'refuse' to leave out, without telling anyone, those who blocked the adder (the adder
   * is not told of a block, as for messages and calls).
   */
  async mayInvite(adder: string, invitees: string[]): Promise<Map<string, InviteDecision>> {
    const [accepted, blockers] = await Promise.all([store(this.deps.groups.acceptedBy(adder, invitees)), store(this.deps.blockersOf(adder, invitees))]);
    return new Map(invitees.map((a) => [a, blockers.has(a) ? 'refuse' : accepted.has(a) ? 'join' : 'invite']));
  }

  // ── membership ───────────────────────────────────────────────────────────

  async create(conn: Connection, req: Request<'group.create'>): Promise<ResultMap['group.create']> {
    const { groups, config } = this.deps;
    const me = conn.address;
    const wanted = uniqueAddresses(req.members).filter((a) => a !== me);
    if (wanted.length + 1 > config.groups.maxMembers) throw new BlockRtcError('GROUP_FULL', `A group has at most ${config.groups.maxMembers} members`);
    const decisions = await this.mayInvite(me, wanted);
    const joining = wanted.filter((a) => decisions.get(a) === 'join');
    const inviting = wanted.filter((a) => decisions.get(a) === 'invite');
    const gate = req.gate ?? null;
    // The creator first: a gate its own admin does not pass would lock them out at the first recheck.
    await this.deps.gates.admit(gate, me);
    const verified = await this.deps.gates.admitAll(gate, joining);
    const info = { name: req.name.trim(), description: req.description ?? null, picture: req.picture ?? null, createdBy: me, gate };
    const { change, group } = await store(
      groups.create(info, async (g) => {
        const change = noChange();
        const created = await g.system({ action: 'created', by: me, name: info.name, description: info.description, picture: info.picture, members: [me, ...joining], ...(gate ? { gate } : {}) });
        change.messages.push(created);
        change.joined = await g.put([
          { address: me, role: 'admin', state: 'active', addedBy: me, joinedFrom: created.id, gateVerifiedAt: verified },
          ...joining.map((address) => ({ address, role: 'member' as const, state: 'active' as const, addedBy: me, joinedFrom: created.id, gateVerifiedAt: verified })),
        ]);
        if (inviting.length) {
          change.messages.push(await g.system({ action: 'invited', by: me, members: inviting }));
          change.invited = await g.put(inviting.map((address) => ({ address, role: 'member' as const, state: 'invited' as const, addedBy: me, joinedFrom: null })));
        }
        return { change, group: g.group };
      }),
    );
    const detail = { group: toGroupInfo(group, change.joined.length, null), members: [...change.joined, ...change.invited].map(toGroupMember) };
    await this.publish(group.id, detail.group, me, change, conn.id);
    return detail;
  }

  async get(conn: Connection, req: Request<'group.get'>): Promise<ResultMap['group.get']> {
    const { groups } = this.deps;
    const group = await store(groups.get(req.group));
    if (!group) throw new BlockRtcError('GROUP_NOT_FOUND');
    const me = await store(groups.member(req.group, conn.address));
    if (!me || (me.state !== 'active' && me.state !== 'invited')) throw new BlockRtcError('NOT_GROUP_MEMBER');
    const [members, call] = await Promise.all([store(groups.members(req.group)), store(groups.activeCall(req.group))]);
    const active = members.filter((m) => m.state === 'active').length;
    return { group: toGroupInfo(group, active, me.state === 'active' ? call : null), members: members.map(toGroupMember) };
  }

  async list(conn: Connection): Promise<ResultMap['group.list']> {
    const { groups } = this.deps;
    const rows = await store(groups.list(conn.address));
    const calls = await store(groups.activeCalls(rows.filter((r) => r.state === 'active').map((r) => r.group.id)));
    return {
      groups: rows.map((r) => ({
        ...toGroupInfo(r.group, r.memberCount, calls.get(r.group.id) ?? null),
        role: r.role,
        state: r.state === 'invited' ? 'invited' : 'active',
        lastMessage: r.lastMessage
          ? { id: r.lastMessage.id.toString(), from: r.lastMessage.sender, kind: r.lastMessage.kind, text: toGroupMessage(r.lastMessage).text, createdAt: r.lastMessage.createdAt.toISOString() }
          : null,
        unread: r.unread,
        readUpTo: r.readUpTo > 0n ? r.readUpTo.toString() : null,
      })),
    };
  }

  async addMembers(conn: Connection, req: Request<'group.addMembers'>): Promise<ResultMap['group.addMembers']> {
    const { groups, config } = this.deps;
    const me = conn.address;
    const wanted = uniqueAddresses(req.members).filter((a) => a !== me);
    const decisions = await this.mayInvite(me, wanted);
    // The chain is asked before the group is locked (a slow endpoint never holds the lock);
    // only those who join at once are checked, invitees when they accept.
    const gate = (await store(groups.get(req.group)))?.gate ?? null;
    const before = gate ? await store(groups.members(req.group)) : [];
    const present = new Set(before.filter((r) => r.state === 'active' || r.state === 'invited').map((r) => r.address));
    const verified = await this.deps.gates.admitAll(gate, wanted.filter((a) => decisions.get(a) === 'join' && !present.has(a)));
    const result = await store(
      groups.change(req.group, async (g) => {
        const rows = await g.members();
        requireAdmin(rows, me);
        if (!sameGate(g.group.gate, gate)) throw new BlockRtcError('UNAVAILABLE', "The group's token gate changed meanwhile; try again", { retryAfterMs: 100 });
        const current = new Set(rows.filter((r) => r.state === 'active' || r.state === 'invited').map((r) => r.address));
        const fresh = wanted.filter((a) => !current.has(a) && decisions.get(a) !== 'refuse');
        if (gate && fresh.some((a) => decisions.get(a) === 'join' && present.has(a))) throw new BlockRtcError('UNAVAILABLE', 'The members changed meanwhile; try again', { retryAfterMs: 100 });
        if (current.size + fresh.length > config.groups.maxMembers) {
          throw new BlockRtcError('GROUP_FULL', `A group has at most ${config.groups.maxMembers} members (${current.size} now)`);
        }
        const change = noChange();
        const joining = fresh.filter((a) => decisions.get(a) === 'join');
        const inviting = fresh.filter((a) => decisions.get(a) === 'invite');
        if (joining.length) {
          const added = await g.system({ action: 'added', by: me, members: joining });
          change.messages.push(added);
          change.joined = await g.put(joining.map((address) => ({ address, role: 'member' as const, state: 'active' as const, addedBy: me, joinedFrom: added.id, gateVerifiedAt: verified })));
        }
        if (inviting.length) {
          change.messages.push(await g.system({ action: 'invited', by: me, members: inviting }));
          change.invited = await g.put(inviting.map((address) => ({ address, role: 'member' as const, state: 'invited' as const, addedBy: me, joinedFrom: null })));
        }
        return { change, group: g.group, active: rows.filter((r) => r.state === 'active').length + joining.length };
      }),
    );
    if (!result) throw new BlockRtcError('GROUP_NOT_FOUND');
    await this.publish(req.group, toGroupInfo(result.group, result.active, null), me, result.change);
    return { added: [...result.change.joined, ...result.change.invited].map(toGroupMember) };
  }

  async removeMember(conn: Connection, req: Request<'group.removeMember'>): Promise<ResultMap['group.removeMember']> {
    const member = checksumAddress(req.member);
    if (member === conn.address) return this.leave(conn, { type: 'group.leave', id: req.id, group: req.group });
    const me = conn.address;
    const result = await store(
      this.deps.groups.change(req.group, async (g) => {
        const rows = await g.members();
        requireAdmin(rows, me);
        const target = rows.find((r) => r.address === member && (r.state === 'active' || r.state === 'invited'));
        if (!target) throw new BlockRtcError('GROUP_MEMBER_NOT_FOUND');
        const change = noChange();
        const removed = await g.system({ action: 'removed', by: me, members: [member] });
        change.messages.push(removed);
        await g.end(member, 'removed', target.state === 'active' ? removed.id : null);
        change.gone.push({ address: member, state: 'removed' });
        return { change, group: g.group, active: rows.filter((r) => r.state === 'active' && r.address !== member).length };
      }),
    );
    if (!result) throw new BlockRtcError('GROUP_NOT_FOUND');
    await this.publish(req.group, toGroupInfo(result.group, result.active, null), me, result.change);
    return {};
  }

  async leave(conn: Connection, req: Request<'group.leave'>): Promise<ResultMap['group.leave']> {
    const me = conn.address;
    const result = await store(
      this.deps.groups.change(req.group, async (g) => {
        const rows = await g.members();
        const mine = rows.find((r) => r.address === me && r.state === 'active');
        if (!mine) throw new BlockRtcError('NOT_GROUP_MEMBER');
        const change = noChange();
        const left = await g.system({ action: 'left', by: me, members: [me] });
        change.messages.push(left);
        await g.end(me, 'left', left.id);
        change.gone.push({ address: me, state: 'left' });
        const others = rows.filter((r) => r.state === 'active' && r.address !== me);
        // The last admin leaving hands the group to the member who has been in it longest.
        if (mine.role === 'admin' && others.length > 0 && !others.some((r) => r.role === 'admin')) {
          const heir = others[0]!;
          await g.setRole(heir.address, 'admin');
          change.messages.push(await g.system({ action: 'role', by: me, members: [heir.address], role: 'admin' }));
        }
        return { change, group: g.group, active: others.length };
      }),
    );
    if (!result) throw new BlockRtcError('GROUP_NOT_FOUND');
    await this.publish(req.group, toGroupInfo(result.group, result.active, null), me, result.change);
    return {};
  }

  async update(conn: Connection, req: Request<'group.update'>): Promise<ResultMap['group.update']> {
    const me = conn.address;
    const fields: { name?: string; description?: string | null; picture?: string | null; gate?: TokenGate | null } = {};
    if (req.name !== undefined) fields.name = req.name.trim();
    if (req.description !== undefined) fields.description = req.description;
    if (req.picture !== undefined) fields.picture = req.picture;
    if (req.gate !== undefined) {
      // Only an admin may; asked before the chain is, so a member learns nothing from the answer.
      const rows = await store(this.deps.groups.members(req.group));
      if (rows.length === 0) throw new BlockRtcError('GROUP_NOT_FOUND');
      requireAdmin(rows, me);
      await this.deps.gates.admit(req.gate, me);
      fields.gate = req.gate;
    }
    const result = await store(
      this.deps.groups.change(req.group, async (g) => {
        const rows = await g.members();
        requireAdmin(rows, me);
        const group = await g.update(fields);
        // Everyone else is due for a check under the new gate at once.
        if (fields.gate !== undefined) await g.resetGateChecks(fields.gate !== null, me, new Date());
        const change = noChange();
        change.messages.push(await g.system({ action: 'updated', by: me, ...fields }));
        return { change, group, active: rows.filter((r) => r.state === 'active').length };
      }),
    );
    if (!result) throw new BlockRtcError('GROUP_NOT_FOUND');
    const info = toGroupInfo(result.group, result.active, null);
    await this.publish(req.group, info, me, result.change);
    return { group: info };
  }

  async setRole(conn: Connection, req: Request<'group.setRole'>): Promise<ResultMap['group.setRole']> {
    const me = conn.address;
    const member = checksumAddress(req.member);
    const result = await store(
      this.deps.groups.change(req.group, async (g) => {
        const rows = await g.members();
        requireAdmin(rows, me);
        const target = rows.find((r) => r.address === member && r.state === 'active');
        if (!target) throw new BlockRtcError('GROUP_MEMBER_NOT_FOUND');
        if (target.role === req.role) return { change: noChange(), group: g.group };
        if (req.role === 'member' && !rows.some((r) => r.state === 'active' && r.role === 'admin' && r.address !== member)) throw new BlockRtcError('GROUP_LAST_ADMIN');
        await g.setRole(member, req.role);
        const change = noChange();
        change.messages.push(await g.system({ action: 'role', by: me, members: [member], role: req.role }));
        return { change, group: g.group };
      }),
    );
    if (!result) throw new BlockRtcError('GROUP_NOT_FOUND');
    await this.publish(req.group, null, me, result.change);
    return {};
  }

  async accept(conn: Connection, req: Request<'group.accept'>): Promise<ResultMap['group.accept']> {
    const me = conn.address;
    const invitation = await store(this.deps.groups.member(req.group, me));
    if (invitation?.state !== 'invited') throw (await store(this.deps.groups.get(req.group))) ? new BlockRtcError('GROUP_NOT_INVITED') : new BlockRtcError('GROUP_NOT_FOUND');
    const gate = (await store(this.deps.groups.get(req.group)))?.gate ?? null;
    const verified = await this.deps.gates.admit(gate, me);
    const result = await store(
      this.deps.groups.change(req.group, async (g) => {
        const rows = await g.members();
        const mine = rows.find((r) => r.address === me);
        if (mine?.state !== 'invited') throw new BlockRtcError('GROUP_NOT_INVITED');
        if (!sameGate(g.group.gate, gate)) throw new BlockRtcError('UNAVAILABLE', "The group's token gate changed meanwhile; try again", { retryAfterMs: 100 });
        const joined = await g.system({ action: 'joined', by: me, members: [me] });
        await g.activate(me, joined.id, verified);
        const change = noChange();
        change.messages.push(joined);
        change.joined.push({ ...mine, state: 'active', joinedFrom: joined.id, since: joined.createdAt, gateVerifiedAt: verified });
        return { change, group: g.group };
      }),
    );
    if (!result) throw new BlockRtcError('GROUP_NOT_FOUND');
    const detail = await this.get(conn, { type: 'group.get', id: req.id, group: req.group });
    await this.publish(req.group, detail.group, me, result.change);
    return detail;
  }

  /**
   * The token gate recheck found that `address` no longer passes: they are removed (as by an
   * admin, `by` being themselves and `reason` saying why), with a system message in the group.
   * Nothing happens when they are no longer an active member or the group lost its gate.
   */
  async removeForGate(groupId: string, address: string, reason: GateRevocation): Promise<boolean> {
    const result = await store(
      this.deps.groups.change(groupId, async (g) => {
        if (!g.group.gate) return null;
        const rows = await g.members();
        const target = rows.find((r) => r.address === address && r.state === 'active');
        if (!target) return null;
        const change = noChange();
        const removed = await g.system({ action: 'removed', by: address, members: [address], reason });
        change.messages.push(removed);
        await g.end(address, 'removed', removed.id);
        change.gone.push({ address, state: 'removed', reason });
        const others = rows.filter((r) => r.state === 'active' && r.address !== address);
        // A group is never left without an admin: the longest-standing member takes over.
        if (target.role === 'admin' && others.length > 0 && !others.some((r) => r.role === 'admin')) {
          const heir = others[0]!;
          await g.setRole(heir.address, 'admin');
          change.messages.push(await g.system({ action: 'role', by: address, members: [heir.address], role: 'admin' }));
        }
        return { change, group: g.group, active: others.length };
      }),
    );
    if (!result) return false;
    await this.publish(groupId, toGroupInfo(result.group, result.active, null), address, result.change);
    return true;
  }

  async decline(conn: Connection, req: Request<'group.decline'>): Promise<ResultMap['group.decline']> {
    const me = conn.address;
    const result = await store(
      this.deps.groups.change(req.group, async (g) => {
        const mine = (await g.members()).find((r) => r.address === me);
        if (mine?.state !== 'invited') throw new BlockRtcError('GROUP_NOT_INVITED');
        await g.end(me, 'declined', null);
        return { group: g.group, role: mine.role, by: mine.addedBy };
      }),
    );
    if (!result) throw new BlockRtcError('GROUP_NOT_FOUND');
    const info = toGroupInfo(result.group, await store(this.deps.groups.activeCount(req.group)), null);
    this.deps.events.toUser(me, 'group.membership', { group: info, state: 'declined', role: result.role, by: me }, { skip: conn.id });
    return {};
  }

  // ── messages ─────────────────────────────────────────────────────────────

  async send(conn: Connection, req: Request<'group.send'>): Promise<ResultMap['group.send']> {
    const { writer, config, attachments, metrics, events } = this.deps;
    await this.requireActive(req.group, conn.address);
    await this.messageLimit(conn);
    const conversation = groupConversation(req.group);
    let attachment: { id: string; mime: string; size: number } | null = null;
    if (req.kind !== 'text') {
      const meta = await store(attachments.meta(req.attachmentId!));
      if (!meta || meta.owner !== conn.address || meta.peer !== conversation || !meta.mime.startsWith(`${req.kind}/`)) throw new BlockRtcError('ATTACHMENT_INVALID');
      attachment = { id: meta.id, mime: meta.mime, size: meta.size };
    }
    if (writer.pending >= config.limits.pendingWrites) {
      metrics.rateLimited.inc({ limit: 'pending_writes' });
      throw new BlockRtcError('UNAVAILABLE', 'This node is busy storing messages; try again shortly', { retryAfterMs: 1000 });
    }
    const body = req.kind === 'text' ? req.text! : null;
    const outcome = await writer.submit({ conversation, sender: conn.address, recipient: conversation, clientId: req.clientId, kind: req.kind, body, attachmentId: attachment?.id ?? null });
    if (!outcome.ok) throw new BlockRtcError('IDEMPOTENCY_CONFLICT');
    if (!outcome.duplicate) metrics.messagesIn.inc();
    // One publish, whatever the group's size; a retry is published again (receivers drop copies by id).
    const frame = encodeEvent(
      'group.message',
      toGroupMessage({ id: outcome.id, groupId: req.group, conversation, sender: conn.address, clientId: req.clientId, kind: req.kind, body, attachment, createdAt: outcome.createdAt }),
    );
    events.groupFrame(req.group, frame, outcome.duplicate ? { skip: conn.id } : { skip: conn.id, sentAt: Date.now() });
    return { id: outcome.id.toString(), createdAt: outcome.createdAt.toISOString(), conversation, duplicate: outcome.duplicate };
  }

  async history(conn: Connection, req: Request<'group.history'>): Promise<ResultMap['group.history']> {
    const mine = await store(this.deps.groups.member(req.group, conn.address));
    // Past members keep what they could see while they were members; invitees see nothing yet.
    if (!mine || mine.joinedFrom === null) throw await this.notMember(req.group);
    const rows = await store(this.deps.groups.history(req.group, { from: mine.joinedFrom, until: mine.visibleUntil }, req.before ? BigInt(req.before) : null, req.limit));
    return { messages: rows.map(toGroupMessage), before: rows.length === req.limit ? rows[rows.length - 1]!.id.toString() : null };
  }

  async delivered(conn: Connection, req: Request<'group.delivered'>): Promise<ResultMap['group.delivered']> {
    return this.advance(conn, req.group, 'delivered', BigInt(req.upTo));
  }

  async read(conn: Connection, req: Request<'group.read'>): Promise<ResultMap['group.read']> {
    return this.advance(conn, req.group, 'read', BigInt(req.upTo));
  }

  /**
   * One row update per request, however many messages it covers. The receipt goes to the
   * senders of the covered messages (usually a few) and to the member's other devices, not to
   * the whole group; counts for any message are asked for with `group.receipts`.
   */
  private async advance(conn: Connection, group: string, status: 'delivered' | 'read', upTo: bigint): Promise<{ upTo: string }> {
    const { groups, events } = this.deps;
    const moved = await store(groups.advance(group, conn.address, status, upTo));
    if (!moved) throw await this.notMember(group);
    if (moved.after > moved.before) {
      const senders = await store(groups.sendersBetween(group, conn.address, moved.before, moved.after));
      const frame = encodeEvent('group.receipt', { group, status, by: conn.address, upTo: moved.after.toString(), at: moved.at.toISOString() });
      for (const s of senders) events.frame(s, frame);
      events.frame(conn.address, frame, { skip: conn.id });
    }
    return { upTo: moved.after.toString() };
  }

  async receipts(conn: Connection, req: Request<'group.receipts'>): Promise<ResultMap['group.receipts']> {
    const mine = await store(this.deps.groups.member(req.group, conn.address));
    if (!mine || mine.joinedFrom === null) throw await this.notMember(req.group);
    const { joinedFrom, visibleUntil } = mine;
    // Only messages the asker could see.
    const ids = [...new Set(req.ids.map(BigInt))].filter((id) => id >= joinedFrom && (visibleUntil === null || id <= visibleUntil));
    if (ids.length === 0) return { receipts: [] };
    const rows = await store(this.deps.groups.receipts(req.group, ids, req.details));
    return {
      receipts: rows.map((r) => ({
        id: r.id.toString(),
        of: r.of,
        delivered: r.delivered,
        read: r.read,
        ...(req.details ? { deliveredBy: r.deliveredBy ?? [], readBy: r.readBy ?? [] } : {}),
      })),
    };
  }

  async typing(conn: Connection, req: Request<'group.typing'>): Promise<ResultMap['group.typing']> {
    await this.requireActive(req.group, conn.address);
    this.deps.events.toGroup(req.group, 'group.typing', { group: req.group, from: conn.address, typing: req.typing }, { except: conn.address });
    return {};
  }

  /** `chat.sync {groups: true}`: the messages of my groups after the cursor, each within my visible range. */
  async since(address: string, after: bigint | null, limit: number): Promise<{ messages: ReturnType<typeof toGroupMessage>[]; more: boolean; ids: bigint[] }> {
    const { messages, more } = await store(this.deps.groups.since(address, after, limit));
    return { messages: messages.map(toGroupMessage), more, ids: messages.map((m) => m.id) };
  }

  // ── internals ────────────────────────────────────────────────────────────

  async isActiveMember(group: string, address: string): Promise<boolean> {
    return (await store(this.deps.groups.member(group, address)))?.state === 'active';
  }

  /** An active member may send, type and call; the row is read per request (primary key). */
  async requireActive(group: string, address: string): Promise<MemberRow> {
    const mine = await store(this.deps.groups.member(group, address));
    if (mine?.state !== 'active') throw await this.notMember(group);
    return mine;
  }

  private async notMember(group: string): Promise<BlockRtcError> {
    return (await store(this.deps.groups.get(group))) ? new BlockRtcError('NOT_GROUP_MEMBER') : new BlockRtcError('GROUP_NOT_FOUND');
  }

  /** Shares the per-user message budget with 1:1 chat; open while Redis cannot be asked (as in ChatService). */
  private async messageLimit(conn: Connection): Promise<void> {
    const { limiter, metrics, config } = this.deps;
    try {
      await enforceLimit(limiter, metrics, { name: 'msg', metric: 'messages', id: conn.address, rule: config.limits.messages });
    } catch (err) {
      if (err instanceof BlockRtcError) throw err;
      if (this.limiterWarnings.due()) this.deps.log.warn({ err: (err as Error)?.message ?? String(err) }, 'message rate limit unavailable; sends are not limited per user until it is back');
    }
  }

  /**
   * Tells everyone about a committed change, in an order that keeps delivery exact: new
   * members' nodes are told to subscribe (this node's own users before the answer, others on
   * `join` on their user channel, which reaches their devices before `group.membership`
   * does); the system messages go on the group channel (a removed member there still sees
   * its removal); then `drop` for those who are gone, awaited so that it is in Redis before
   * the change is answered and precedes everything published to the group later.
   */
  private async publish(group: string, info: GroupInfo | null, by: string, change: Change, skip?: string): Promise<void> {
    const { events, fanout } = this.deps;
    const joined = change.joined.map((m) => m.address);
    await Promise.all(joined.map((a) => fanout.attachLocal(group, a)));
    await Promise.all(joined.map((a) => events.userControl(a, encodeGroupControl({ join: group }))));
    for (const m of change.messages) events.toGroup(group, 'group.message', toGroupMessage(m), skip ? { skip } : {});
    await Promise.all(change.gone.map((g) => events.groupControl(group, encodeGroupControl({ drop: g.address }))));
    await Promise.all(change.gone.map((g) => events.userControl(g.address, encodeGroupControl({ leave: group }))));
    if (!info) return;
    for (const m of change.joined) events.toUser(m.address, 'group.membership', { group: info, state: 'active', role: m.role, by });
    for (const m of change.invited) events.toUser(m.address, 'group.membership', { group: info, state: 'invited', role: m.role, by });
    for (const g of change.gone) events.toUser(g.address, 'group.membership', { group: info, state: g.state, role: 'member', by, ...(g.reason ? { reason: g.reason } : {}) });
  }
}

/** Gates are small JSON written by this service: the same rule list serializes the same way. */
function sameGate(a: TokenGate | null, b: TokenGate | null): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function uniqueAddresses(list: string[]): string[] {
  return [...new Set(list.map((a) => checksumAddress(a)))];
}

function requireAdmin(rows: MemberRow[], address: string): MemberRow {
  const mine = rows.find((r) => r.address === address && r.state === 'active');
  if (!mine) throw new BlockRtcError('NOT_GROUP_MEMBER');
  if (mine.role !== 'admin') throw new BlockRtcError('NOT_GROUP_ADMIN');
  return mine;
}

