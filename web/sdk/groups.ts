/**
 * Group conversations: membership, roles, the group's details and its call. Messages of a
 * group go through `client.chat` like 1:1 ones (conversation key `g:<id>`, see conversation.ts).
 * The cache here is what the last answer or event said; `list()` and `get()` ask the server.
 */
import type {
  GroupCallEvent,
  GroupDetail,
  GroupInfo,
  GroupMember,
  GroupMembershipEvent,
  GroupMessage,
  GroupRole,
  GroupSummary,
} from '../../protocol/index.ts';
import { normalize } from './address.ts';
import type { CallManager, CallOptions, CallSession } from './call/index.ts';
import { groupOf } from './conversation.ts';
import type { Engine } from './engine.ts';
import { BlockRtcClientError } from './errors.ts';
import { Emitter } from './events.ts';

/** My relation to a group: a member, invited, or no longer in it. */
export type GroupStanding = 'active' | 'invited' | 'removed' | 'left' | 'declined';

export interface GroupState {
  info: GroupInfo;
  role: GroupRole;
  standing: GroupStanding;
  /** Known after `get()` (or create/accept); kept current from membership system messages. */
  members: GroupMember[] | null;
  /** From `list()`: messages from others after my read cursor. */
  unread: number;
  lastMessage: GroupSummary['lastMessage'];
}

export interface GroupsEvents {
  /** A group appeared or changed (details, my role or standing, members, its call). */
  change: GroupState;
  /** I was added or invited (by someone else, or on another device of mine). */
  membership: GroupMembershipEvent;
  /** A call of one of my groups started or ended. */
  call: GroupCallEvent;
}

export interface CreateGroupInput {
  name: string;
  description?: string;
  /** An emoji or a colour `#rrggbb`. */
  picture?: string;
  /** Initial members besides me; those who never accepted me get an invitation instead. */
  members?: string[];
}

export interface GroupUpdate {
  name?: string;
  /** null clears it. */
  description?: string | null;
  /** null clears it. */
  picture?: string | null;
}

export class GroupsClient extends Emitter<GroupsEvents> {
  private readonly groups = new Map<string, GroupState>();
  /** Member lists being fetched again after a system message, one request per group at a time. */
  private readonly refreshing = new Map<string, Promise<void>>();

  constructor(
    private readonly engine: Engine,
    private readonly calls: CallManager,
  ) {
    super();
    const s = engine.signal;
    s.on('group.membership', (e) => this.onMembership(e));
    s.on('group.call', (e) => this.onCall(e));
    s.on('group.message', (m) => this.onSystem(m));
    // Events missed while disconnected: the list is read again.
    s.on('signal.open', ({ reconnect }) => {
      if (reconnect && this.groups.size > 0) void this.list().catch(() => undefined);
    });
    engine.on('session', () => this.groups.clear());
  }

  /** Groups known here (after `list()`), newest activity first. */
  get all(): GroupState[] {
    return [...this.groups.values()].sort((a, b) => activity(b).localeCompare(activity(a)));
  }

  /** By group id or conversation key. */
  cached(group: string): GroupState | null {
    return this.groups.get(groupId(group)) ?? null;
  }

  /** My groups and invitations. */
  async list(): Promise<GroupState[]> {
    const r = await this.engine.signal.request('group.list', {});
    const seen = new Set<string>();
    for (const g of r.groups) {
      seen.add(g.id);
      this.put(g, { role: g.role, standing: g.state, unread: g.unread, lastMessage: g.lastMessage });
    }
    // Groups I am no longer in are not listed: keep them, marked, so an open one can say why.
    for (const [id, st] of this.groups) {
      if (!seen.has(id) && (st.standing === 'active' || st.standing === 'invited')) this.patch(id, { standing: 'removed' });
    }
    return this.all;
  }

  /** The group's details and members (also for an invitation, to decide on it). */
  async get(group: string): Promise<GroupState> {
    const r = await this.engine.signal.request('group.get', { group: groupId(group) });
    return this.putDetail(r);
  }

  async create(input: CreateGroupInput): Promise<GroupState> {
    const r = await this.engine.signal.request('group.create', {
      name: input.name,
      ...(input.description ? { description: input.description } : {}),
      ...(input.picture ? { picture: input.picture } : {}),
      members: (input.members ?? []).map(normalize),
    });
    return this.putDetail(r);
  }

  /** Admins only. Returns who was added or invited (people already in it are left out). */
  async addMembers(group: string, members: string[]): Promise<GroupMember[]> {
    const id = groupId(group);
    const r = await this.engine.signal.request('group.addMembers', { group: id, members: members.map(normalize) });
    const st = this.groups.get(id);
    if (st?.members) {
      const known = new Set(r.added.map((m) => m.address));
      this.patch(id, { members: [...st.members.filter((m) => !known.has(m.address)), ...r.added] });
    }
    return r.added;
  }

  /** Admins only; removing myself is leaving. */
  async removeMember(group: string, member: string): Promise<void> {
    const id = groupId(group);
    const address = normalize(member);
    await this.engine.signal.request('group.removeMember', { group: id, member: address });
    const st = this.groups.get(id);
    if (st?.members) this.patch(id, { members: st.members.filter((m) => m.address !== address) });
  }

  /** Admins only: makes a member an admin, or an admin a member again. */
  async setRole(group: string, member: string, role: GroupRole): Promise<void> {
    const id = groupId(group);
    const address = normalize(member);
    await this.engine.signal.request('group.setRole', { group: id, member: address, role });
    const st = this.groups.get(id);
    if (st?.members) this.patch(id, { members: st.members.map((m) => (m.address === address ? { ...m, role } : m)) });
  }

  /** Admins only: name, description and picture (at least one of them). */
  async update(group: string, changes: GroupUpdate): Promise<GroupInfo> {
    const id = groupId(group);
    if (changes.name === undefined && changes.description === undefined && changes.picture === undefined) {
      throw new BlockRtcClientError('INVALID_FIELDS', 'Nothing to change');
    }
    const r = await this.engine.signal.request('group.update', { group: id, ...changes });
    this.patch(id, { info: r.group });
    return r.group;
  }

  rename(group: string, name: string): Promise<GroupInfo> {
    return this.update(group, { name });
  }

  async leave(group: string): Promise<void> {
    const id = groupId(group);
    await this.engine.signal.request('group.leave', { group: id });
    this.patch(id, { standing: 'left' });
  }

  /** Accepts an invitation: I become a member and see the group's messages from now on. */
  async accept(group: string): Promise<GroupState> {
    const r = await this.engine.signal.request('group.accept', { group: groupId(group) });
    return this.putDetail(r);
  }

  async decline(group: string): Promise<void> {
    const id = groupId(group);
    await this.engine.signal.request('group.decline', { group: id });
    this.patch(id, { standing: 'declined' });
  }

  /** Calls the group (every member's devices ring), or joins its call if one is running. */
  call(group: string, kind: 'audio' | 'video', options: CallOptions = {}): Promise<CallSession> {
    return this.calls.startGroup(groupId(group), kind, options);
  }

  /** Joins the group's running call late (no ring needed); asks the server which call it is. */
  async joinCall(group: string, options: CallOptions = {}): Promise<CallSession> {
    const st = await this.get(group);
    const running = st.info.activeCall;
    if (!running) throw new BlockRtcClientError('CALL_ENDED', 'The group has no call running');
    return this.calls.joinGroupCall(st.info.id, running, options);
  }

  // ── internals ─────────────────────────────────────────────────────────────

  private putDetail(d: GroupDetail): GroupState {
    const me = this.engine.address;
    const mine = d.members.find((m) => m.address === me);
    return this.put(d.group, { members: d.members, ...(mine ? { role: mine.role, standing: mine.state } : {}) });
  }

  private put(info: GroupInfo, over: Partial<Omit<GroupState, 'info'>>): GroupState {
    const old = this.groups.get(info.id);
    const base: Omit<GroupState, 'info'> = old ?? { role: 'member', standing: 'active', members: null, unread: 0, lastMessage: null };
    const st: GroupState = { ...base, ...over, info: { ...info } };
    this.groups.set(info.id, st);
    this.emit('change', st);
    return st;
  }

  private patch(id: string, over: Partial<GroupState>): void {
    const st = this.groups.get(id);
    if (!st) return;
    Object.assign(st, over);
    this.emit('change', st);
  }

  private onMembership(e: GroupMembershipEvent): void {
    // An invitation or removal makes the member list I had stale.
    this.put(e.group, { role: e.role, standing: e.state, ...(e.state === 'active' ? {} : { members: null }) });
    this.emit('membership', e);
  }

  private onCall(e: GroupCallEvent): void {
    const st = this.groups.get(e.group);
    if (st) {
      const activeCall = e.state === 'started' ? { callId: e.callId, kind: e.kind, startedBy: e.from, startedAt: new Date().toISOString() } : null;
      // An "ended" for an older call must not hide a newer one.
      if (e.state === 'started' || st.info.activeCall?.callId === e.callId) this.patch(e.group, { info: { ...st.info, activeCall } });
    }
    this.emit('call', e);
  }

  /** System messages say what changed: details are applied, member lists fetched again. */
  private onSystem(m: GroupMessage): void {
    const st = this.groups.get(m.group);
    if (!st) return;
    if (m.kind !== 'system') {
      this.patch(m.group, { lastMessage: { id: m.id, from: m.from, kind: m.kind, text: m.text, createdAt: m.createdAt } });
      return;
    }
    const sys = m.system;
    if (sys?.action === 'updated') {
      const info = { ...st.info };
      if (sys.name !== undefined) info.name = sys.name;
      if (sys.description !== undefined) info.description = sys.description;
      if (sys.picture !== undefined) info.picture = sys.picture;
      this.patch(m.group, { info });
    } else if (st.members && st.standing === 'active') void this.refreshMembers(m.group);
  }

  private refreshMembers(id: string): Promise<void> {
    let p = this.refreshing.get(id);
    if (!p) {
      p = this.get(id)
        .then(() => undefined, () => undefined)
        .finally(() => this.refreshing.delete(id));
      this.refreshing.set(id, p);
    }
    return p;
  }
}

/** Accepts a group id or its conversation key `g:<id>`. */
function groupId(group: string): string {
  return (groupOf(group) ?? group).toLowerCase();
}

function activity(st: GroupState): string {
  return st.lastMessage?.createdAt ?? st.info.createdAt;
}
